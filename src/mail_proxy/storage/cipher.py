"""Encryption of the secrets the proxy must be able to read back.

SMTP and IMAP passwords, tenant callback credentials and signing secrets have to be
usable in clear text, so they cannot be hashed; they are sealed with Fernet
(AES-128-CBC + HMAC-SHA256) under a key that is *not* in the database. The key comes
from ``GMP_SECRET_KEY`` or from ``secret.key`` in the instance folder, created with
mode 0600 on first start. A copied database without the key reveals none of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken

from mail_proxy.errors import MailProxyError
from mail_proxy.settings import Settings

log = structlog.get_logger(__name__)

KEY_FILE_NAME = "secret.key"


class Cipher:
    """Seals and opens short text secrets; ``None`` passes through unchanged."""

    def __init__(self, key: str | bytes) -> None:
        self._key = _as_fernet_key(key)
        self._fernet = Fernet(self._key)

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use of the instance secret (signing download links),
        derived by HMAC-SHA256 (RFC 2104) so that one key reveals nothing of the
        other and changing the secret key changes both."""
        return hmac.new(self._key, purpose.encode("utf-8"), hashlib.sha256).digest()

    def seal(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, token: str | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise MailProxyError(
                "A stored secret cannot be decrypted: the secret key differs from the one "
                "the database was written with (check GMP_SECRET_KEY or secret.key)."
            ) from exc


def _as_fernet_key(key: str | bytes) -> bytes:
    """A valid Fernet key is used as is; any other passphrase is stretched by SHA-256."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def load_cipher(settings: Settings) -> Cipher:
    """The cipher for this instance: the configured key, else the key file."""
    if settings.secret_key:
        return Cipher(settings.secret_key)
    return Cipher(_key_from_file(settings.data_dir / KEY_FILE_NAME))


def _key_from_file(path: Path) -> bytes:
    """Read the key file, or create it atomically (a racing process's key wins)."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    try:
        os.link(draft, path)
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        draft.unlink()
    log.info("secret_key_created", path=str(path))
    return key
