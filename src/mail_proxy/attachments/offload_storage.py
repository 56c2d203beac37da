"""Where offloaded files are written and read: the tenant's fsspec ``storage_url``.

fsspec gives one interface over the local disk and S3-compatible object stores
(AWS, MinIO, Ceph...); its calls block, so each runs in a worker thread. S3
credentials come from the tenant's config (sealed at rest), else from the
environment as boto3 finds them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from fsspec.core import url_to_fs

from mail_proxy.attachments.errors import AttachmentUnavailable
from mail_proxy.domain.large_file_config import LargeFileRules

T = TypeVar("T")
PRESIGN_MAX_SECONDS = 7 * 86_400
"""S3 signature version 4 refuses presigned URLs valid longer than seven days."""


class StorageUnavailable(AttachmentUnavailable):
    """The tenant's storage could not be written or read now; trying later may work,
    so the dispatcher defers the message on the retry schedule."""


def _options(rules: LargeFileRules | None) -> dict[str, Any]:
    if rules is None or rules.scheme != "s3":
        return {}
    client = {"region_name": rules.region} if rules.region else {}
    return {
        "key": rules.access_key_id,
        "secret": rules.secret_access_key,
        "endpoint_url": rules.endpoint_url,
        "client_kwargs": client,
        # SigV4: the signature every S3 region and S3-compatible server accepts.
        "config_kwargs": {"signature_version": "s3v4"},
        # One tenant's credentials must never serve another's URL from fsspec's cache.
        "skip_instance_cache": True,
    }


def object_url(rules: LargeFileRules, key: str) -> str:
    return f"{(rules.storage_url or '').rstrip('/')}/{key}"


async def upload(rules: LargeFileRules, url: str, content: bytes) -> None:
    def write() -> None:
        fs, path = url_to_fs(url, **_options(rules))
        fs.makedirs(fs._parent(path), exist_ok=True)
        fs.pipe_file(path, content)

    await _run(write)


async def presigned(rules: LargeFileRules, url: str, seconds: float) -> str:
    """A GET link to the object valid ``seconds`` (at most ``PRESIGN_MAX_SECONDS``)."""

    def sign() -> str:
        fs, path = url_to_fs(url, **_options(rules))
        return str(fs.sign(path, expiration=int(min(seconds, PRESIGN_MAX_SECONDS))))

    return await _run(sign)


async def remove(rules: LargeFileRules | None, url: str) -> None:
    """Delete the object; one already gone is fine (a retried clean-up)."""

    def delete() -> None:
        fs, path = url_to_fs(url, **_options(rules))
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)

    await _run(delete)


async def _run(call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except Exception as exc:
        # fsspec backends raise their own trees (OSError, botocore's credential and
        # endpoint errors, aiohttp's...): whichever it is, the storage failed, and
        # the caller needs one type to defer on.
        raise StorageUnavailable(f"large-file storage: {type(exc).__name__}: {exc}"[:300]) from exc
