"""The administrative ports: tenants, their accounts, suspensions, instance-wide
settings and the audit trail. The use cases (``mail_proxy.services``) drive them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mail_proxy.domain.models import Account, CommandLogEntry, Tenant


class Tenants(ABC):
    """Tenants, with their API-key digest and sealed signing secret."""

    @abstractmethod
    async def create(self, tenant: Tenant, api_key_hash: str | None, now: float) -> Tenant:
        """Insert; raises ``Conflict`` if the id exists."""

    @abstractmethod
    async def update(self, tenant_id: str, changes: dict[str, Any], now: float) -> Tenant | None:
        """Partial update; keys are Tenant field names. None if not found."""

    @abstractmethod
    async def get(self, tenant_id: str) -> Tenant | None: ...

    @abstractmethod
    async def all(self, active_only: bool = False) -> list[Tenant]: ...

    @abstractmethod
    async def delete(self, tenant_id: str) -> bool:
        """Removes its accounts, messages, events and suspensions too."""

    @abstractmethod
    async def set_api_key(
        self, tenant_id: str, key_hash: str | None, expires_at: int | None
    ) -> bool: ...

    @abstractmethod
    async def by_key_hash(self, key_hash: str) -> Tenant | None:
        """The tenant owning this key hash (expiry is checked by the caller)."""

    @abstractmethod
    async def set_signing_secret(self, tenant_id: str, secret: str) -> bool: ...


class Control(ABC):
    """What may be sent right now: suspensions of tenants and batches, and the
    instance-wide switch. Stored, so every process and every restart obeys them."""

    @abstractmethod
    async def suspend(self, tenant_id: str, batch_code: str) -> None:
        """``batch_code='*'`` suspends the whole tenant."""

    @abstractmethod
    async def activate(self, tenant_id: str, batch_code: str | None) -> None:
        """None clears every suspension of the tenant."""

    @abstractmethod
    async def suspensions(self, tenant_id: str) -> list[str]: ...

    @abstractmethod
    async def set_instance_active(self, active: bool, *, if_unset: bool = False) -> None:
        """Suspend (False) or resume the whole instance, for every process on the
        database and across restarts. ``if_unset``: only a starting value, kept
        when the instance was ever suspended or activated."""

    @abstractmethod
    async def instance_active(self) -> bool:
        """False while the instance is suspended; True if it never was."""


class InstanceSettings(ABC):
    """Settings changed at run time through the API (the bounce mailbox)."""

    @abstractmethod
    async def get(self) -> dict[str, Any]: ...

    @abstractmethod
    async def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Keys given are set; a key given as ``None`` is removed. Returns them all."""


class Accounts(ABC):
    """SMTP accounts of each tenant."""

    @abstractmethod
    async def upsert(self, account: Account, now: float) -> tuple[Account, bool]:
        """Create or replace; returns (account, created)."""

    @abstractmethod
    async def get(self, tenant_id: str, account_id: str) -> Account | None:
        """With the password decrypted: for the dispatcher, never for responses."""

    @abstractmethod
    async def all(self, tenant_id: str | None = None) -> list[Account]: ...

    @abstractmethod
    async def delete(self, tenant_id: str, account_id: str) -> bool: ...


class Audit(ABC):
    """The command log: who changed what through the API, and when."""

    @abstractmethod
    async def record(
        self,
        *,
        ts: float,
        method: str,
        path: str,
        actor: str,
        tenant_id: str | None,
        status_code: int,
        body: dict[str, Any] | None,
    ) -> None: ...

    @abstractmethod
    async def entries(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        tenant_id: str | None = None,
        endpoint: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CommandLogEntry]:
        """Oldest first (the order things happened), ``since``/``until`` inclusive.

        ``endpoint`` matches part of ``"METHOD /path?query"``, ignoring case.
        """

    @abstractmethod
    async def purge(self, before: float) -> int:
        """Remove entries older than ``before`` (Unix s); how many."""
