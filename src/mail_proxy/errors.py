"""The exception tree of the proxy.

    MailProxyError
    ├── NotFound            the named tenant, account or message does not exist
    ├── Conflict            the thing exists already / state forbids the change
    ├── InvalidInput        a value the caller can fix (field named)
    ├── Unauthorized        no or unknown credentials
    │   └── WrongTenant     credentials of one tenant naming another tenant
    ├── Forbidden           a tenant asking for what only the operator may do
    ├── TooLarge            a request body or batch above the configured limit
    ├── TargetRefused       a tenant-chosen host the operator's network policy refuses
    └── StorageUnavailable  the database is locked, full or unreachable; retry later

The classes name what went wrong, not how a front door says it: the HTTP API maps
them to status codes in ``api/errors.py``; a CLI or an SDK maps them its own way.
"""

from __future__ import annotations


class MailProxyError(Exception):
    """Base of every error the proxy raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(MailProxyError):
    """The named tenant, account or message does not exist."""


class Conflict(MailProxyError):
    """The thing exists already, or its current state forbids the change."""


class InvalidInput(MailProxyError):
    """A value the caller can fix; ``field`` names it when there is one."""


class Unauthorized(MailProxyError):
    """No credentials, or credentials the proxy does not know."""


class WrongTenant(Unauthorized):
    """Valid credentials of one tenant used on another tenant's data."""

    def __init__(self, message: str = "Token not authorized for this tenant") -> None:
        super().__init__(message)


class Forbidden(MailProxyError):
    """A tenant asking for what only the operator may do."""


class TooLarge(MailProxyError):
    """A request body or batch above the configured limit."""


class TargetRefused(MailProxyError):
    """A host or URL that resolves to an address the target policy refuses."""


class StorageUnavailable(MailProxyError):
    """The database is locked, full or unreachable: the same call may succeed later."""
