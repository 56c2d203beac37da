"""Tenants: creation (with the API key shown once), reading, updating, keys.

Tenant API keys are ``secrets.token_urlsafe(32)`` (43 characters) and are stored
only as SHA-256 digests. Each tenant also gets a signing secret, the HMAC key the
reporter signs client-sync calls with; the admin and the tenant itself may read
and rotate it. The secrets the proxy sends to the tenant (``client_auth``) are
never shown back: answers carry ``MASK`` instead.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from mail_proxy.api.deps import AdminCaller, AnyCaller, Caller, RuntimeDep, hash_api_key
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.api.targets import check_callback_url
from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.errors import Forbidden, InvalidInput, NotFound
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import (
    MASK,
    ApiKeyRequest,
    ApiKeyResponse,
    ClientAuthIn,
    ClientAuthOut,
    RemovedResponse,
    SigningSecretResponse,
    SyncStatusEntry,
    SyncStatusResponse,
    TenantDetail,
    TenantIn,
    TenantListResponse,
    TenantOut,
    TenantResponse,
    TenantSaveResponse,
    TenantUpdate,
    canonical_rate_limits,
)

router = APIRouter(tags=["tenants"], responses=ERROR_RESPONSES)

ADMIN_ONLY_FIELDS = ("active", "api_key_expires_at")
NOT_NULLABLE = ("client_sync_path", "client_attachment_path", "active")


def new_secret() -> str:
    """43 URL-safe characters (256 bits), for API keys and signing secrets."""
    return secrets.token_urlsafe(32)


def _masked(value: str | None) -> str | None:
    return MASK if value else None


def tenant_out(tenant: Tenant) -> TenantOut:
    auth = tenant.client_auth
    return TenantOut(
        id=tenant.id,
        name=tenant.name,
        client_base_url=tenant.client_base_url,
        client_sync_path=tenant.client_sync_path,
        client_attachment_path=tenant.client_attachment_path,
        client_auth=ClientAuthOut(
            method=auth.method.value,
            token=_masked(auth.token),
            user=auth.user,
            password=_masked(auth.password),
        ),
        rate_limits=tenant.rate_limits,
        large_file_config=tenant.large_file_config,
        active=tenant.active,
        has_api_key=tenant.has_api_key,
        api_key_expires_at=tenant.api_key_expires_at,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


async def tenant_detail(runtime: Runtime, tenant: Tenant) -> TenantDetail:
    return TenantDetail(
        **tenant_out(tenant).model_dump(),
        signing_secret=tenant.signing_secret,
        suspended_batches=await runtime.store.suspensions(tenant.id),
    )


async def tenant_response(runtime: Runtime, tenant: Tenant) -> TenantResponse:
    return TenantResponse(**(await tenant_detail(runtime, tenant)).model_dump())


def _client_auth(given: ClientAuthIn | None, current: ClientAuth | None) -> ClientAuth:
    """The auth to store; a masked token or password keeps the current one."""
    if given is None:
        return ClientAuth()
    token, password = given.token, given.password
    if current is not None:
        token = current.token if token == MASK else token
        password = current.password if password == MASK else password
    return ClientAuth(AuthMethod(given.method), token, given.user, password)


def _changes(body: TenantUpdate, current: Tenant | None) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"id", "client_auth"})
    for name in NOT_NULLABLE:
        if changes.get(name, ...) is None:
            del changes[name]
    if "rate_limits" in changes:
        try:
            changes["rate_limits"] = canonical_rate_limits(changes["rate_limits"])
        except ValueError as exc:
            raise InvalidInput(str(exc), field="rate_limits") from None
    if "client_auth" in body.model_fields_set:
        changes["client_auth"] = _client_auth(
            body.client_auth, current.client_auth if current else None
        )
    return changes


async def _checked_changes(
    runtime: Runtime, caller: Caller, body: TenantUpdate, current: Tenant | None
) -> dict[str, Any]:
    """The changes to store, the callback URL judged by the target policy.

    Whoever sets the URL decides the mark: the admin's URL is trusted, a tenant's
    is judged again each time it is called. An edit that leaves the URL alone keeps
    the mark (an admin renaming a tenant does not vouch for the tenant's URL).
    """
    changes = _changes(body, current)
    url = changes.get("client_base_url")
    if url:
        await check_callback_url(caller, runtime.settings, url, "client_base_url")
    if current is None or "client_base_url" in changes:
        changes["target_trusted"] = caller.is_admin
    return changes


async def _existing(runtime: Runtime, tenant_id: str) -> Tenant:
    tenant = await runtime.store.get_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return tenant


@router.post(
    "/tenant",
    response_model=TenantSaveResponse,
    summary="Create a tenant (API key shown once) or update the fields sent",
)
async def save_tenant(
    body: TenantIn, caller: AdminCaller, runtime: RuntimeDep
) -> TenantSaveResponse:
    now = time.time()
    current = await runtime.store.get_tenant(body.id)
    changes = await _checked_changes(runtime, caller, body, current)
    if current is not None:
        updated = await runtime.store.update_tenant(body.id, changes, now)
        if current.signing_secret is None:
            await runtime.store.set_signing_secret(body.id, new_secret())
            updated = await runtime.store.get_tenant(body.id)
        tenant = await _existing(runtime, body.id) if updated is None else updated
        return TenantSaveResponse(created=False, tenant=await tenant_detail(runtime, tenant))
    api_key = new_secret()
    changes.setdefault("client_auth", ClientAuth())
    tenant = Tenant(id=body.id, signing_secret=new_secret(), **changes)
    created = await runtime.store.create_tenant(tenant, hash_api_key(api_key), now)
    return TenantSaveResponse(
        created=True, tenant=await tenant_detail(runtime, created), api_key=api_key
    )


@router.get("/tenants", response_model=TenantListResponse, summary="List tenants")
async def list_tenants(
    _: AdminCaller, runtime: RuntimeDep, active_only: Annotated[bool, Query()] = False
) -> TenantListResponse:
    tenants = await runtime.store.list_tenants(active_only=active_only)
    return TenantListResponse(tenants=[tenant_out(t) for t in tenants])


@router.get(
    "/tenants/sync-status",
    response_model=SyncStatusResponse,
    summary="Client-sync schedule of every active tenant",
)
async def sync_status(_: AdminCaller, runtime: RuntimeDep) -> SyncStatusResponse:
    """``next_sync_due`` is the documented boolean; the time is ``next_sync_ts``."""
    now = time.time()
    rows = await runtime.sync_loop.sync_status(now)
    tenants = {t.id: t for t in await runtime.store.list_tenants(active_only=True)}
    return SyncStatusResponse(
        sync_interval_seconds=int(runtime.settings.sync_interval),
        tenants=[_sync_entry(row, tenants.get(str(row["tenant_id"])), now) for row in rows],
    )


def _sync_entry(row: dict[str, Any], tenant: Tenant | None, now: float) -> SyncStatusEntry:
    next_ts = row["next_sync_due"]
    return SyncStatusEntry(
        id=row["tenant_id"],
        name=tenant.name if tenant else None,
        active=tenant.active if tenant else False,
        client_base_url=tenant.client_base_url if tenant else None,
        last_sync_ts=row["last_sync_ts"],
        next_sync_due=next_ts is not None and next_ts <= now,
        next_sync_ts=next_ts,
        in_dnd=row["in_dnd"],
    )


@router.get("/tenant/{tenant_id}", response_model=TenantResponse, summary="Read a tenant")
async def get_tenant(tenant_id: str, caller: AnyCaller, runtime: RuntimeDep) -> TenantResponse:
    tenant = await _existing(runtime, caller.tenant(tenant_id))
    return await tenant_response(runtime, tenant)


@router.put("/tenant/{tenant_id}", response_model=TenantResponse, summary="Update the fields sent")
async def update_tenant(
    tenant_id: str, body: TenantUpdate, caller: AnyCaller, runtime: RuntimeDep
) -> TenantResponse:
    """A tenant token may not change ``active`` or ``api_key_expires_at``."""
    current = await _existing(runtime, caller.tenant(tenant_id))
    if not caller.is_admin and body.model_fields_set & set(ADMIN_ONLY_FIELDS):
        raise Forbidden("Only the admin token may change active or api_key_expires_at")
    changes = await _checked_changes(runtime, caller, body, current)
    updated = await runtime.store.update_tenant(tenant_id, changes, time.time())
    if updated is None:
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return await tenant_response(runtime, updated)


@router.delete(
    "/tenant/{tenant_id}",
    response_model=RemovedResponse,
    summary="Remove a tenant with its accounts and messages",
)
async def delete_tenant(tenant_id: str, _: AdminCaller, runtime: RuntimeDep) -> RemovedResponse:
    if not await runtime.store.delete_tenant(tenant_id):
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return RemovedResponse(removed=tenant_id)


@router.post(
    "/tenant/{tenant_id}/api-key",
    response_model=ApiKeyResponse,
    summary="Issue a new API key (the old one stops working)",
)
async def rotate_api_key(
    tenant_id: str, _: AdminCaller, runtime: RuntimeDep, body: ApiKeyRequest | None = None
) -> ApiKeyResponse:
    expires_at = body.expires_at if body else None
    api_key = new_secret()
    if not await runtime.store.set_api_key(tenant_id, hash_api_key(api_key), expires_at):
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return ApiKeyResponse(tenant_id=tenant_id, api_key=api_key, api_key_expires_at=expires_at)


@router.delete(
    "/tenant/{tenant_id}/api-key", response_model=TenantResponse, summary="Revoke the API key"
)
async def revoke_api_key(tenant_id: str, _: AdminCaller, runtime: RuntimeDep) -> TenantResponse:
    if not await runtime.store.set_api_key(tenant_id, None, None):
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return await tenant_response(runtime, await _existing(runtime, tenant_id))


@router.post(
    "/tenant/{tenant_id}/signing-secret",
    response_model=SigningSecretResponse,
    summary="Rotate the secret client-sync calls are signed with",
)
async def rotate_signing_secret(
    tenant_id: str, caller: AnyCaller, runtime: RuntimeDep
) -> SigningSecretResponse:
    tenant = caller.tenant(tenant_id)
    secret = new_secret()
    if not await runtime.store.set_signing_secret(tenant, secret):
        raise NotFound(f"Unknown tenant {tenant!r}")
    return SigningSecretResponse(tenant_id=tenant, signing_secret=secret)
