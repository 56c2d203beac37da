"""Request dependencies: the runtime, and who is calling (two-tier auth).

The ``X-API-Token`` header carries either the admin token (``GMP_API_TOKEN``,
compared in constant time) or a tenant's API key, looked up by its SHA-256 digest
with its expiry honoured. A tenant token acts only on its own tenant: ``tenant_id``
may be omitted and is taken from the token, naming another tenant is refused. The
key of an inactive tenant (``active: false``) still reads but changes nothing: an
admin switched the tenant off, and its application must not keep queueing mail.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from mail_proxy.errors import Forbidden, InvalidInput, Unauthorized, WrongTenant
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import BounceSettings
from mail_proxy.services.accounts import AccountService
from mail_proxy.services.audit import AuditService
from mail_proxy.services.bounces import BounceService
from mail_proxy.services.control import ControlService, Wakeups
from mail_proxy.services.instance import InstanceService
from mail_proxy.services.messages import MessageService
from mail_proxy.services.submission import SubmissionLimits, SubmissionService
from mail_proxy.services.tenants import TenantService, hash_api_key

TOKEN_HEADER = "X-API-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_token_header = APIKeyHeader(
    name=TOKEN_HEADER,
    auto_error=False,
    description="The admin token (GMP_API_TOKEN) or a tenant's API key.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: the admin, or one tenant."""

    tenant_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None

    @property
    def actor(self) -> str:
        return "admin" if self.tenant_id is None else f"tenant:{self.tenant_id}"

    def scope(self, requested: str | None) -> str | None:
        """The tenant a request acts on; None only for the admin meaning "all tenants"."""
        if self.tenant_id is None:
            return requested or None
        if requested and requested != self.tenant_id:
            raise WrongTenant()
        return self.tenant_id

    def tenant(self, requested: str | None) -> str:
        """Like ``scope`` but one tenant is needed: the admin must name it."""
        tenant_id = self.scope(requested)
        if tenant_id is None:
            raise InvalidInput("tenant_id is required with the admin token", field="tenant_id")
        return tenant_id


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticate(
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str | None, Security(_token_header)],
) -> Caller:
    """Any valid token; records the caller for the command log."""
    caller = await identify(runtime, token, changes=request.method in STATE_CHANGING)
    request.state.actor = caller.actor
    request.state.tenant_id = caller.tenant_id
    return caller


async def identify(runtime: Runtime, token: str | None, *, changes: bool) -> Caller:
    """Who ``token`` is (the API's header, the dashboard's login); raises when nobody."""
    if not token:
        raise Unauthorized(f"Missing {TOKEN_HEADER} header")
    admin = runtime.settings.api_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Caller()
    return await identify_tenant(runtime, hash_api_key(token), changes=changes)


async def identify_tenant(runtime: Runtime, key_hash: str, *, changes: bool) -> Caller:
    """The tenant whose API key has this digest, with its key's expiry and the
    inactive tenant's read-only rule applied (a dashboard session re-checks it so)."""
    tenant = await runtime.store.tenants.by_key_hash(key_hash)
    if tenant is None:
        raise Unauthorized("Invalid API token")
    expires = tenant.api_key_expires_at
    if expires is not None and expires <= time.time():
        raise Unauthorized("API token expired")
    if changes and not tenant.active:
        raise Forbidden(f"Tenant {tenant.id!r} is inactive: its token may read but not change")
    return Caller(tenant_id=tenant.id)


async def require_admin(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("This endpoint needs the admin token")
    return caller


AnyCaller = Annotated[Caller, Depends(authenticate)]
AdminCaller = Annotated[Caller, Depends(require_admin)]


# -- services (the use cases the routes call), built from the runtime ---------------


def control_service(runtime: RuntimeDep) -> ControlService:
    dispatcher, sync_loop = runtime.dispatcher, runtime.sync_loop

    def instance_switched(active: bool) -> None:
        dispatcher.active = active

    wakeups = Wakeups(
        dispatch=dispatcher.wake,
        run_now=dispatcher.run_now,
        sync=sync_loop.wake,
        instance_switched=instance_switched,
    )
    return ControlService(
        runtime.store, wakeups, started_at=runtime.started_at, clock=runtime.clock.now
    )


def message_service(runtime: RuntimeDep) -> MessageService:
    retention = runtime.settings.delivery_report_retention_seconds
    return MessageService(
        runtime.store,
        retention_seconds=retention,
        clock=runtime.clock.now,
        wake=runtime.dispatcher.wake,
    )


def audit_service(runtime: RuntimeDep) -> AuditService:
    retention = runtime.settings.command_log_retention_seconds
    return AuditService(runtime.store, retention_seconds=retention, clock=runtime.clock.now)


ControlDep = Annotated[ControlService, Depends(control_service)]
MessagesDep = Annotated[MessageService, Depends(message_service)]
AuditDep = Annotated[AuditService, Depends(audit_service)]


def tenant_service(runtime: RuntimeDep) -> TenantService:
    return TenantService(runtime.store, runtime.clock.now)


def account_service(runtime: RuntimeDep) -> AccountService:
    return AccountService(runtime.store, runtime.clock.now, probe=runtime.mailer.check)


def instance_service(runtime: RuntimeDep) -> InstanceService:
    return InstanceService(runtime.store, BounceSettings().model_dump())


TenantServiceDep = Annotated[TenantService, Depends(tenant_service)]
AccountServiceDep = Annotated[AccountService, Depends(account_service)]
InstanceServiceDep = Annotated[InstanceService, Depends(instance_service)]


def submission_service(runtime: RuntimeDep) -> SubmissionService:
    settings = runtime.settings
    limits = SubmissionLimits(
        max_messages=settings.max_batch_messages,
        max_recipients=settings.max_batch_recipients,
        default_priority=settings.default_priority,
        filesystem_roots=tuple(settings.attachment_base_dir),
    )
    return SubmissionService(
        runtime.store, runtime.clock.now, runtime.dispatcher.wake, limits, runtime.dispatcher
    )


SubmissionServiceDep = Annotated[SubmissionService, Depends(submission_service)]


def bounce_service(runtime: RuntimeDep) -> BounceService:
    return BounceService(runtime.store, runtime.clock.now)


BounceServiceDep = Annotated[BounceService, Depends(bounce_service)]
