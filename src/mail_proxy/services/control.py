"""Steering the proxy: suspend and activate, run-now.

Suspension is per tenant, either whole (batch code ``*``) or per batch code; no
tenant means the whole instance. The instance flag is stored, so every process on
the database (and a restart) honours it; the running loops of this process are told
at once through injected callables, so this module needs no runtime to be tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mail_proxy.domain.models import active_total
from mail_proxy.errors import Conflict, NotFound
from mail_proxy.ports import MessageFilter, Store

WHOLE_TENANT = "*"


@dataclass(frozen=True, slots=True)
class Wakeups:
    """How a command reaches this process's loops without waiting for their timers."""

    dispatch: Callable[[], None]
    """Sending was resumed: look for due messages (ignored in test mode)."""
    run_now: Callable[[], None]
    """A dispatch pass now, in test mode too."""
    sync: Callable[[str | None], None]
    """Client sync now: every tenant (None, Do Not Disturb respected) or one (cleared)."""
    instance_switched: Callable[[bool], None]
    """The stored instance flag changed: apply it here before the next re-read."""


@dataclass(frozen=True, slots=True)
class Suspension:
    """What a suspend or activate acted on and what it now holds or releases."""

    tenant_id: str | None
    batch_code: str | None
    suspended_batches: list[str]
    pending: int
    active: bool


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    active: bool
    pending: int
    uptime_seconds: int


class ControlService:
    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        *,
        started_at: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._wakeups = wakeups
        self._started_at = started_at
        self._clock = clock

    async def status(self, tenant_id: str | None) -> InstanceStatus:
        """``active`` is the stored instance flag, the same in every process."""
        return InstanceStatus(
            active=await self._store.control.instance_active(),
            pending=active_total(await self._store.messages.count_by_status(tenant_id)),
            uptime_seconds=int(self._clock() - self._started_at),
        )

    async def run_now(self, tenant_id: str | None) -> None:
        """Send and report now: one tenant (its Do Not Disturb cleared) or, with
        None, every tenant."""
        if tenant_id is not None:
            await self._known(tenant_id)
        self._wakeups.run_now()
        self._wakeups.sync(tenant_id)

    async def suspend(self, tenant_id: str | None, batch_code: str | None) -> Suspension:
        """A tenant (``batch_code`` None or ``*``), one of its batches, or with no
        tenant the whole instance."""
        if tenant_id is None:
            return await self._switch_instance(False)
        await self._known(tenant_id)
        await self._store.control.suspend(tenant_id, batch_code or WHOLE_TENANT)
        return await self._tenant_suspension(tenant_id, batch_code, active=False)

    async def activate(self, tenant_id: str | None, batch_code: str | None) -> Suspension:
        """Without ``batch_code`` every suspension of the tenant is cleared; one batch
        cannot be activated while the whole tenant (``*``) is suspended."""
        if tenant_id is None:
            return await self._switch_instance(True)
        await self._known(tenant_id)
        one_batch = None if batch_code == WHOLE_TENANT else batch_code
        if one_batch is not None and WHOLE_TENANT in await self._store.control.suspensions(
            tenant_id
        ):
            raise Conflict(
                f"Tenant {tenant_id!r} is suspended as a whole ('*'): activate the tenant "
                "(without batch_code) before activating a single batch"
            )
        await self._store.control.activate(tenant_id, one_batch)
        self._wakeups.dispatch()
        return await self._tenant_suspension(tenant_id, batch_code, active=True)

    async def _known(self, tenant_id: str) -> None:
        if await self._store.tenants.get(tenant_id) is None:
            raise NotFound(f"Unknown tenant {tenant_id!r}")

    async def _switch_instance(self, active: bool) -> Suspension:
        await self._store.control.set_instance_active(active)
        self._wakeups.instance_switched(active)
        return Suspension(None, None, [], await self._held(None, None), active)

    async def _tenant_suspension(
        self, tenant_id: str, batch_code: str | None, *, active: bool
    ) -> Suspension:
        acted_on = None if batch_code in (None, WHOLE_TENANT) else batch_code
        return Suspension(
            tenant_id=tenant_id,
            batch_code=acted_on,
            suspended_batches=await self._store.control.suspensions(tenant_id),
            pending=await self._held(tenant_id, acted_on),
            active=active,
        )

    async def _held(self, tenant_id: str | None, batch_code: str | None) -> int:
        """Pending (and deferred) messages of the scope: those a suspension holds."""
        flt = MessageFilter(tenant_id=tenant_id, active_only=True, batch_code=batch_code)
        return await self._store.messages.count(flt)
