"""Attachment specs of a submitted message: checked for shape, not fetched.

A spec arrives as ``{"filename", "storage_path", "fetch_mode"?, "mime_type"?,
"content_md5"?, "auth"?}`` and leaves as a frozen ``AttachmentSpec``. When
``fetch_mode`` is absent it is inferred from ``storage_path`` as the protocol says:
``base64:`` prefix → base64, ``http(s)://`` → http_url, leading ``/`` → filesystem,
anything else → endpoint. Inline base64 data is decoded once here so
that a broken attachment is refused at submission rather than failing at send time.
The content's MD5, when the sender knows it (``content_md5``, or the legacy
``{MD5:hex}`` marker in the file name; the field wins), keys the attachment cache
and is checked against what is fetched; the marker is removed from the sent name.
The file name becomes a MIME parameter, so CR/LF in it is refused (RFC 5322 §2.2),
and it is at most 255 characters: the longest name common file systems (ext4, NTFS,
APFS) let a recipient save.
"""

from __future__ import annotations

import binascii
import posixpath
import re
from base64 import b64decode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mail_proxy.domain.models import AuthMethod, ClientAuth

FETCH_MODES = ("base64", "http_url", "filesystem", "endpoint")
AUTH_METHODS = tuple(method.value for method in AuthMethod)
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_MD5_MARKER = re.compile(r"_?\{MD5:([0-9a-fA-F]*)\}")
MAX_FILENAME = 255


class InvalidAttachment(ValueError):
    """The spec cannot be delivered as given; the text says which one and why."""


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    """Where one attachment's content is and how to fetch it; ``auth`` is for the
    tenant's server (bearer or basic), None when the spec named none."""

    filename: str
    storage_path: str
    fetch_mode: str
    mime_type: str | None = None
    content_md5: str | None = None
    auth: ClientAuth | None = None


def sent_filename(spec: AttachmentSpec) -> str:
    """The name the recipient sees: the ``{MD5:…}`` marker and the underscore
    before it removed (protocol: "removed from the sent filename")."""
    return _MD5_MARKER.sub("", spec.filename) or "attachment"


def expected_md5(spec: AttachmentSpec) -> str | None:
    """The MD5 the sender gave, lower case: ``content_md5``, else a 32-digit marker."""
    if spec.content_md5 is not None:
        return spec.content_md5.lower()
    found = _MD5_MARKER.search(spec.filename)
    if found is not None and _MD5.match(found.group(1)):
        return found.group(1).lower()
    return None


def inline_content(storage_path: str) -> bytes:
    """The bytes of a base64 attachment (``base64:`` prefix optional; line breaks
    allowed, as RFC 2045 base64 has them)."""
    data = "".join(storage_path.removeprefix("base64:").split())
    try:
        return b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAttachment("is not valid base64") from None


def filesystem_refusal(storage_path: str, roots: Sequence[str]) -> str | None:
    """Why a filesystem path cannot be accepted, judged by its text alone, or None.

    The operator's roots (``GMP_ATTACHMENT_BASE_DIR``) are the only folders a tenant
    may name: without any the mode is off, and a path with ``..`` or outside every
    root is refused here, at submission. Symlinks, hard links and the proxy's own
    files can only be judged on the disk, when the file is read.
    """
    if not roots:
        return "filesystem attachments are disabled (the operator set no GMP_ATTACHMENT_BASE_DIR)"
    if not storage_path.startswith("/") or ".." in storage_path.split("/"):
        return "filesystem path must be absolute and without '..'"
    path = posixpath.normpath(storage_path)
    if not any(_inside(path, posixpath.normpath(root)) for root in roots):
        return "filesystem path is outside the folders the operator allows"
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def infer_fetch_mode(storage_path: str) -> str:
    """The protocol's rule: ``base64:`` prefix, http(s) URL, absolute path, else endpoint."""
    if storage_path.startswith("base64:"):
        return "base64"
    if storage_path.startswith(("http://", "https://")):
        return "http_url"
    if storage_path.startswith("/"):
        return "filesystem"
    return "endpoint"


def attachment_specs(value: object) -> tuple[AttachmentSpec, ...]:
    """Check and normalise a message's ``attachments`` (None → no attachments)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidAttachment("attachments must be a list")
    return tuple(_attachment(item, f"attachment {index}") for index, item in enumerate(value))


def spec_payload(spec: AttachmentSpec) -> dict[str, Any]:
    """The stored JSON form: the submitted keys, optional ones only when set."""
    stored: dict[str, Any] = {
        "filename": spec.filename,
        "storage_path": spec.storage_path,
        "fetch_mode": spec.fetch_mode,
    }
    if spec.mime_type is not None:
        stored["mime_type"] = spec.mime_type
    if spec.content_md5 is not None:
        stored["content_md5"] = spec.content_md5
    if spec.auth is not None:
        auth = spec.auth
        stored["auth"] = {"method": auth.method.value} | {
            key: value
            for key, value in (
                ("token", auth.token),
                ("user", auth.user),
                ("password", auth.password),
            )
            if value is not None
        }
    return stored


def spec_from_payload(stored: Mapping[str, Any]) -> AttachmentSpec:
    """A stored spec back, trusted as validated at submission (its base64 is not
    decoded twice); a row of any version lacks at most the inferred fetch mode."""
    storage_path = str(stored.get("storage_path") or "")
    auth = stored.get("auth")
    return AttachmentSpec(
        filename=str(stored.get("filename") or ""),
        storage_path=storage_path,
        fetch_mode=str(stored.get("fetch_mode") or infer_fetch_mode(storage_path)),
        mime_type=stored.get("mime_type"),
        content_md5=stored.get("content_md5"),
        auth=_client_auth(auth) if isinstance(auth, Mapping) else None,
    )


def _client_auth(auth: Mapping[str, Any]) -> ClientAuth:
    return ClientAuth(
        AuthMethod(auth.get("method", "none")),
        auth.get("token"),
        auth.get("user"),
        auth.get("password"),
    )


def _attachment(item: object, where: str) -> AttachmentSpec:
    if not isinstance(item, dict):
        raise InvalidAttachment(f"{where} must be an object")
    filename = item.get("filename")
    storage_path = item.get("storage_path")
    if not isinstance(filename, str) or not filename.strip():
        raise InvalidAttachment(f"{where} needs a filename")
    if any(char in filename for char in "\r\n\x00"):
        raise InvalidAttachment(f"{where} filename contains CR, LF or NUL (header injection)")
    if len(filename) > MAX_FILENAME:
        raise InvalidAttachment(
            f"{where} filename {filename[:40]!r}… is longer than {MAX_FILENAME} characters"
        )
    if not isinstance(storage_path, str) or not storage_path:
        raise InvalidAttachment(f"{where} needs a storage_path")
    fetch_mode = item.get("fetch_mode") or infer_fetch_mode(storage_path)
    if fetch_mode not in FETCH_MODES:
        raise InvalidAttachment(f"{where} fetch_mode must be one of {', '.join(FETCH_MODES)}")
    _check_source(storage_path, fetch_mode, where)
    return AttachmentSpec(filename, storage_path, fetch_mode, **_extras(item, where))


def _check_source(storage_path: str, fetch_mode: str, where: str) -> None:
    if fetch_mode == "base64":
        try:
            inline_content(storage_path)
        except InvalidAttachment as exc:
            raise InvalidAttachment(f"{where} {exc}") from None
    elif fetch_mode == "http_url" and not storage_path.startswith(("http://", "https://")):
        raise InvalidAttachment(f"{where} http_url needs an http(s) URL")


def _extras(item: dict[str, Any], where: str) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    mime_type = item.get("mime_type")
    if mime_type is not None:
        if not isinstance(mime_type, str) or not _MIME_TYPE.match(mime_type):
            raise InvalidAttachment(f"{where} mime_type must be type/subtype")
        extras["mime_type"] = mime_type
    md5 = item.get("content_md5")
    if md5 is not None:
        if not isinstance(md5, str) or not _MD5.match(md5):
            raise InvalidAttachment(f"{where} content_md5 must be 32 hex digits")
        extras["content_md5"] = md5.lower()
    auth = item.get("auth")
    if auth is not None:
        extras["auth"] = _auth(auth, where)
    return extras


def _auth(auth: object, where: str) -> ClientAuth:
    if not isinstance(auth, dict) or auth.get("method", "none") not in AUTH_METHODS:
        raise InvalidAttachment(f"{where} auth method must be one of {', '.join(AUTH_METHODS)}")
    method = auth.get("method", "none")
    if method == "bearer" and not isinstance(auth.get("token"), str):
        raise InvalidAttachment(f"{where} bearer auth needs a token")
    if method == "basic" and not (
        isinstance(auth.get("user"), str) and isinstance(auth.get("password"), str)
    ):
        raise InvalidAttachment(f"{where} basic auth needs user and password")
    return _client_auth(auth)
