"""The exception tree of the proxy.

    MailProxyError
    ├── NotFound            the named tenant, account or message does not exist
    ├── Conflict            the thing exists already / state forbids the change
    ├── InvalidInput        a value the caller can fix (field named)
    ├── Unauthorized        no or unknown token (401)
    │   └── WrongTenant     a tenant token naming another tenant (401)
    ├── Forbidden           tenant token on an admin-only endpoint (403)
    ├── TooLarge            a request body or batch above the configured limit (413)
    ├── TargetRefused       a tenant-chosen host the operator's network policy refuses
    └── StorageUnavailable  the database is locked, full or unreachable; retry later

The API maps each class to one status code in ``api/errors.py``.
"""

from __future__ import annotations


class MailProxyError(Exception):
    """Base of every error the proxy raises on purpose."""

    status_code = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(MailProxyError):
    status_code = 404


class Conflict(MailProxyError):
    status_code = 409


class InvalidInput(MailProxyError):
    status_code = 400


class Unauthorized(MailProxyError):
    status_code = 401


class WrongTenant(Unauthorized):
    def __init__(self, message: str = "Token not authorized for this tenant") -> None:
        super().__init__(message)


class Forbidden(MailProxyError):
    status_code = 403


class TooLarge(MailProxyError):
    status_code = 413


class TargetRefused(MailProxyError):
    """A host or URL that resolves to an address the target policy refuses."""

    status_code = 400


class StorageUnavailable(MailProxyError):
    status_code = 503
