"""SMTP accounts of a tenant. Passwords are write-only: answers say ``has_password``.

A tenant key's hosts (SMTP and IMAP) are judged by the target policy when saved;
the admin's are trusted (``target_trusted``), see :mod:`mail_proxy.api.targets`.

``POST /account`` creates or replaces; on replace, a password left out (or sent
back as the mask) keeps the stored one, so a client can edit an account it read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mail_proxy.api.deps import AccountServiceDep, AnyCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.api.targets import requester
from mail_proxy.domain.models import Account, LimitBehavior
from mail_proxy.schemas import (
    AccountIn,
    AccountListResponse,
    AccountOut,
    AccountSaveResponse,
    RemovedResponse,
)

router = APIRouter(tags=["accounts"], responses=ERROR_RESPONSES)

TenantQuery = Annotated[str | None, Query(description="Default: the token's tenant.")]


def account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id,
        tenant_id=account.tenant_id,
        host=account.host,
        port=account.port,
        user=account.user,
        has_password=bool(account.password),
        use_tls=account.use_tls,
        ttl=account.ttl,
        limit_per_minute=account.limit_per_minute,
        limit_per_hour=account.limit_per_hour,
        limit_per_day=account.limit_per_day,
        limit_behavior=account.limit_behavior.value,
        batch_size=account.batch_size,
        is_default=account.is_default,
        default_from=account.default_from,
        timeout=account.timeout,
        is_pec_account=account.is_pec_account,
        imap_host=account.imap_host,
        imap_port=account.imap_port,
        imap_user=account.imap_user,
        has_imap_password=bool(account.imap_password),
        imap_ssl=account.imap_ssl,
        imap_folder=account.imap_folder,
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


@router.post(
    "/account", response_model=AccountSaveResponse, summary="Create or replace an SMTP account"
)
async def save_account(
    body: AccountIn, caller: AnyCaller, runtime: RuntimeDep, accounts: AccountServiceDep
) -> AccountSaveResponse:
    account = account_from(body, caller.tenant(body.tenant_id))
    saved, created = await accounts.save(account, requester(caller, runtime.settings))
    return AccountSaveResponse(created=created, account=account_out(saved))


def account_from(body: AccountIn, tenant_id: str) -> Account:
    """The account a request describes (the API's body, the dashboard's form)."""
    return Account(
        tenant_id=tenant_id,
        limit_behavior=LimitBehavior(body.limit_behavior),
        **body.model_dump(exclude={"tenant_id", "limit_behavior"}),
    )


@router.get("/accounts", response_model=AccountListResponse, summary="List SMTP accounts")
async def list_accounts(
    caller: AnyCaller, accounts: AccountServiceDep, tenant_id: TenantQuery = None
) -> AccountListResponse:
    """An admin token without ``tenant_id`` lists every tenant's accounts."""
    listed = await accounts.listing(caller.scope(tenant_id))
    return AccountListResponse(accounts=[account_out(a) for a in listed])


@router.delete(
    "/account/{account_id}", response_model=RemovedResponse, summary="Remove an SMTP account"
)
async def delete_account(
    account_id: str, caller: AnyCaller, accounts: AccountServiceDep, tenant_id: TenantQuery = None
) -> RemovedResponse:
    await accounts.delete(caller.tenant(tenant_id), account_id)
    return RemovedResponse(removed=account_id)
