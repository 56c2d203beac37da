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

from mail_proxy.api.deps import AdminCaller, AnyCaller, RuntimeDep, hash_api_key
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.errors import Forbidden, NotFound
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
    if "client_auth" in body.model_fields_set:
        changes["client_auth"] = _client_auth(
            body.client_auth, current.client_auth if current else None
        )
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
async def save_tenant(body: TenantIn, _: AdminCaller, runtime: RuntimeDep) -> TenantSaveResponse:
    now = time.time()
    current = await runtime.store.get_tenant(body.id)
    if current is not None:
        updated = await runtime.store.update_tenant(body.id, _changes(body, current), now)
        if current.signing_secret is None:
            await runtime.store.set_signing_secret(body.id, new_secret())
            updated = await runtime.store.get_tenant(body.id)
        tenant = await _existing(runtime, body.id) if updated is None else updated
        return TenantSaveResponse(created=False, tenant=await tenant_detail(runtime, tenant))
    api_key = new_secret()
    fields = _changes(body, None)
    fields.setdefault("client_auth", ClientAuth())
    tenant = Tenant(id=body.id, signing_secret=new_secret(), **fields)
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
    rows = await runtime.reporter.sync_status(time.time())
    return SyncStatusResponse(
        sync_interval_seconds=int(runtime.settings.sync_interval),
        tenants=[SyncStatusEntry.model_validate(row) for row in rows],
    )


@router.get("/tenant/{tenant_id}", response_model=TenantResponse, summary="Read a tenant")
async def get_tenant(tenant_id: str, caller: AnyCaller, runtime: RuntimeDep) -> TenantResponse:
    tenant = await _existing(runtime, caller.tenant(tenant_id))
    return TenantResponse(tenant=await tenant_detail(runtime, tenant))


@router.put("/tenant/{tenant_id}", response_model=TenantResponse, summary="Update the fields sent")
async def update_tenant(
    tenant_id: str, body: TenantUpdate, caller: AnyCaller, runtime: RuntimeDep
) -> TenantResponse:
    """A tenant token may not change ``active`` or ``api_key_expires_at``."""
    current = await _existing(runtime, caller.tenant(tenant_id))
    if not caller.is_admin and body.model_fields_set & set(ADMIN_ONLY_FIELDS):
        raise Forbidden("Only the admin token may change active or api_key_expires_at")
    updated = await runtime.store.update_tenant(tenant_id, _changes(body, current), time.time())
    if updated is None:
        raise NotFound(f"Unknown tenant {tenant_id!r}")
    return TenantResponse(tenant=await tenant_detail(runtime, updated))


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
    return TenantResponse(tenant=await tenant_detail(runtime, await _existing(runtime, tenant_id)))


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
