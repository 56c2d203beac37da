"""Tenants: creation (with the API key shown once), reading, updating, keys.

The use cases are :mod:`mail_proxy.services.tenants`. The secrets the proxy sends
to the tenant (``client_auth``) are never shown back: answers carry ``MASK``
instead, and ``MASK`` sent back keeps the stored secret.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from mail_proxy.api.deps import AdminCaller, AnyCaller, RuntimeDep, TenantServiceDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.api.targets import requester
from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.errors import InvalidInput
from mail_proxy.schemas import (
    ApiKeyRequest,
    ApiKeyResponse,
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
from mail_proxy.schemas.common import masked
from mail_proxy.schemas.tenants import large_file_config_out
from mail_proxy.services.tenants import TenantView

router = APIRouter(tags=["tenants"], responses=ERROR_RESPONSES)


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
            token=masked(auth.token),
            user=auth.user,
            password=masked(auth.password),
        ),
        rate_limits=tenant.rate_limits,
        large_file_config=large_file_config_out(tenant.large_file_config),
        active=tenant.active,
        has_api_key=tenant.has_api_key,
        api_key_expires_at=tenant.api_key_expires_at,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def tenant_detail(view: TenantView) -> TenantDetail:
    return TenantDetail(
        **tenant_out(view.tenant).model_dump(),
        signing_secret=view.tenant.signing_secret,
        suspended_batches=view.suspended_batches,
    )


def tenant_response(view: TenantView) -> TenantResponse:
    return TenantResponse(**tenant_detail(view).model_dump())


def tenant_changes(body: TenantUpdate) -> dict[str, Any]:
    """The fields sent, as Tenant values (a masked secret is ``None``: keep it)."""
    changes = body.model_dump(exclude_unset=True, exclude={"id", "client_auth"})
    if "rate_limits" in changes:
        try:
            changes["rate_limits"] = canonical_rate_limits(changes["rate_limits"])
        except ValueError as exc:
            raise InvalidInput(str(exc), field="rate_limits") from None
    if "client_auth" in body.model_fields_set:
        auth = body.client_auth
        changes["client_auth"] = (
            ClientAuth(AuthMethod(auth.method), auth.token, auth.user, auth.password)
            if auth
            else ClientAuth()
        )
    return changes


@router.post(
    "/tenant",
    response_model=TenantSaveResponse,
    summary="Create a tenant (API key shown once) or update the fields sent",
)
async def save_tenant(
    body: TenantIn, caller: AdminCaller, runtime: RuntimeDep, tenants: TenantServiceDep
) -> TenantSaveResponse:
    by = requester(caller, runtime.settings)
    saved = await tenants.save(body.id, tenant_changes(body), by)
    return TenantSaveResponse(
        created=saved.created, tenant=tenant_detail(saved.view), api_key=saved.api_key
    )


@router.get("/tenants", response_model=TenantListResponse, summary="List tenants")
async def list_tenants(
    _: AdminCaller, tenants: TenantServiceDep, active_only: Annotated[bool, Query()] = False
) -> TenantListResponse:
    listed = await tenants.listing(active_only=active_only)
    return TenantListResponse(tenants=[tenant_out(t) for t in listed])


@router.get(
    "/tenants/sync-status",
    response_model=SyncStatusResponse,
    summary="Client-sync schedule of every active tenant",
)
async def sync_status(_: AdminCaller, runtime: RuntimeDep) -> SyncStatusResponse:
    """``next_sync_due`` is the documented boolean; the time is ``next_sync_ts``."""
    now = time.time()
    rows = await runtime.sync_loop.sync_status(now)
    tenants = {t.id: t for t in await runtime.store.tenants.all(active_only=True)}
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
async def get_tenant(
    tenant_id: str, caller: AnyCaller, tenants: TenantServiceDep
) -> TenantResponse:
    return tenant_response(await tenants.get(caller.tenant(tenant_id)))


@router.put("/tenant/{tenant_id}", response_model=TenantResponse, summary="Update the fields sent")
async def update_tenant(
    tenant_id: str,
    body: TenantUpdate,
    caller: AnyCaller,
    runtime: RuntimeDep,
    tenants: TenantServiceDep,
) -> TenantResponse:
    """A tenant token may not change ``active`` or ``api_key_expires_at``."""
    by = requester(caller, runtime.settings)
    view = await tenants.update(caller.tenant(tenant_id), tenant_changes(body), by)
    return tenant_response(view)


@router.delete(
    "/tenant/{tenant_id}",
    response_model=RemovedResponse,
    summary="Remove a tenant with its accounts and messages",
)
async def delete_tenant(
    tenant_id: str, _: AdminCaller, tenants: TenantServiceDep
) -> RemovedResponse:
    await tenants.delete(tenant_id)
    return RemovedResponse(removed=tenant_id)


@router.post(
    "/tenant/{tenant_id}/api-key",
    response_model=ApiKeyResponse,
    summary="Issue a new API key (the old one stops working)",
)
async def rotate_api_key(
    tenant_id: str, _: AdminCaller, tenants: TenantServiceDep, body: ApiKeyRequest | None = None
) -> ApiKeyResponse:
    expires_at = body.expires_at if body else None
    api_key = await tenants.rotate_api_key(tenant_id, expires_at)
    return ApiKeyResponse(tenant_id=tenant_id, api_key=api_key, api_key_expires_at=expires_at)


@router.delete(
    "/tenant/{tenant_id}/api-key", response_model=TenantResponse, summary="Revoke the API key"
)
async def revoke_api_key(
    tenant_id: str, _: AdminCaller, tenants: TenantServiceDep
) -> TenantResponse:
    return tenant_response(await tenants.revoke_api_key(tenant_id))


@router.post(
    "/tenant/{tenant_id}/signing-secret",
    response_model=SigningSecretResponse,
    summary="Rotate the secret client-sync calls are signed with",
)
async def rotate_signing_secret(
    tenant_id: str, caller: AnyCaller, tenants: TenantServiceDep
) -> SigningSecretResponse:
    tenant = caller.tenant(tenant_id)
    secret = await tenants.rotate_signing_secret(tenant)
    return SigningSecretResponse(tenant_id=tenant, signing_secret=secret)
