"""A tenant's ``large_file_config``, read and checked.

Kept apart from the message rewrite (``large_files``) so that the wire schemas can
check a config with the very rules sending applies, without importing message
building.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

MB = 1024 * 1024
"""``max_size_mb`` counts mebibytes, as mail clients and providers show sizes."""
DAY = 86_400.0
DEFAULT_MAX_SIZE_MB = 10.0
DEFAULT_TTL_DAYS = 30
STORAGE_SCHEMES = ("file", "s3")
"""Storage the proxy can both write and hand out links for: ``file://`` (served by
the proxy's download route) and S3-compatible object stores (presigned URLs)."""


class Action(StrEnum):
    WARN = "warn"
    REJECT = "reject"
    REWRITE = "rewrite"


@dataclass(frozen=True, slots=True)
class LargeFileRules:
    """A tenant's ``large_file_config``, checked. ``secret_access_key`` is clear
    text only in memory (sealed at rest like the other secrets)."""

    max_size_mb: float
    action: Action
    storage_url: str | None = None
    public_base_url: str | None = None
    file_ttl_days: int = DEFAULT_TTL_DAYS
    lifespan_after_download_days: int | None = None
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.max_size_mb * MB)

    @property
    def scheme(self) -> str:
        return urlsplit(self.storage_url or "").scheme


def large_file_rules(config: Mapping[str, Any] | None) -> LargeFileRules | None:
    """The rules of a stored or submitted config; None when large-file handling is off.

    Raises ``ValueError`` naming the problem: ``rewrite`` without a supported
    ``storage_url``, or credentials written into the URL (they belong in
    ``access_key_id`` / ``secret_access_key``, which are sealed at rest).
    """
    if not config or not config.get("enabled"):
        return None
    rules = LargeFileRules(
        max_size_mb=float(config.get("max_size_mb") or DEFAULT_MAX_SIZE_MB),
        action=Action(config.get("action") or Action.WARN),
        storage_url=config.get("storage_url") or None,
        public_base_url=config.get("public_base_url") or None,
        file_ttl_days=int(config.get("file_ttl_days") or DEFAULT_TTL_DAYS),
        lifespan_after_download_days=config.get("lifespan_after_download_days") or None,
        endpoint_url=config.get("endpoint_url") or None,
        region=config.get("region") or None,
        access_key_id=config.get("access_key_id") or None,
        secret_access_key=config.get("secret_access_key") or None,
    )
    _check_storage(rules)
    return rules


def _check_storage(rules: LargeFileRules) -> None:
    if rules.storage_url is None:
        if rules.action is Action.REWRITE:
            raise ValueError("large_file_config: action 'rewrite' needs a storage_url")
        return
    parts = urlsplit(rules.storage_url)
    if parts.scheme not in STORAGE_SCHEMES:
        known = ", ".join(f"{scheme}://" for scheme in STORAGE_SCHEMES)
        raise ValueError(f"large_file_config: storage_url must start with {known}")
    if parts.username or parts.password:
        raise ValueError(
            "large_file_config: put credentials in access_key_id and secret_access_key, "
            "not in storage_url"
        )
    if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        raise ValueError("large_file_config: a file:// storage_url needs an absolute path")
    if parts.scheme == "s3" and not parts.netloc:
        raise ValueError("large_file_config: an s3:// storage_url needs a bucket")
