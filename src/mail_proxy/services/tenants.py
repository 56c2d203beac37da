"""Tenants: creation with the API key shown once, updates, key and secret rotation.

Tenant API keys are ``secrets.token_urlsafe(32)`` (43 characters) and are stored
only as SHA-256 digests. Each tenant also gets a signing secret, the HMAC key
client-sync calls are signed with. Every save is one store write, so a tenant is
never seen half made (created without its signing secret, or updated halfway).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.errors import Forbidden, InvalidInput, NotFound
from mail_proxy.ports import Store
from mail_proxy.services.requester import Requester
from mail_proxy.services.write_only import kept

ADMIN_ONLY_FIELDS = frozenset({"active", "api_key_expires_at"})
NOT_NULLABLE = frozenset({"client_sync_path", "client_attachment_path", "active"})


def new_secret() -> str:
    """43 URL-safe characters (256 bits), for API keys and signing secrets."""
    return secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """How tenant API keys are stored and looked up: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TenantView:
    """A tenant as its owner sees it: with the batches it suspended."""

    tenant: Tenant
    suspended_batches: list[str]


@dataclass(frozen=True, slots=True)
class SavedTenant:
    """``api_key`` only when the tenant was just created: it is never shown again."""

    view: TenantView
    created: bool
    api_key: str | None = None


class TenantService:
    """``changes`` are Tenant field names to values; ``client_auth`` secrets given as
    ``None`` keep the stored ones (see :mod:`mail_proxy.services.write_only`)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def save(self, tenant_id: str, changes: Mapping[str, Any], by: Requester) -> SavedTenant:
        """Creates the tenant with its API key and signing secret, or updates the
        fields in ``changes`` when it exists (giving it a signing secret if it has none)."""
        current = await self._store.tenants.get(tenant_id)
        fields = await _checked(changes, current, by)
        if current is None:
            return await self._create(tenant_id, fields)
        if current.signing_secret is None:
            fields["signing_secret"] = new_secret()
        return SavedTenant(await self._update(tenant_id, fields), created=False)

    async def update(self, tenant_id: str, changes: Mapping[str, Any], by: Requester) -> TenantView:
        """A tenant may not change ``active`` or its key's expiry: the admin set them."""
        current = await self._existing(tenant_id)
        if not by.is_admin and ADMIN_ONLY_FIELDS & changes.keys():
            raise Forbidden("Only the admin token may change active or api_key_expires_at")
        return await self._update(tenant_id, await _checked(changes, current, by))

    async def get(self, tenant_id: str) -> TenantView:
        return await self._view(await self._existing(tenant_id))

    async def listing(self, active_only: bool = False) -> list[Tenant]:
        return await self._store.tenants.all(active_only=active_only)

    async def delete(self, tenant_id: str) -> None:
        """Removes the tenant with its accounts and messages."""
        if not await self._store.tenants.delete(tenant_id):
            raise _unknown(tenant_id)

    async def rotate_api_key(self, tenant_id: str, expires_at: int | None) -> str:
        """The new key; the old one stops working at once."""
        api_key = new_secret()
        if not await self._store.tenants.set_api_key(tenant_id, hash_api_key(api_key), expires_at):
            raise _unknown(tenant_id)
        return api_key

    async def revoke_api_key(self, tenant_id: str) -> TenantView:
        if not await self._store.tenants.set_api_key(tenant_id, None, None):
            raise _unknown(tenant_id)
        return await self.get(tenant_id)

    async def rotate_signing_secret(self, tenant_id: str) -> str:
        secret = new_secret()
        if not await self._store.tenants.set_signing_secret(tenant_id, secret):
            raise _unknown(tenant_id)
        return secret

    async def _create(self, tenant_id: str, fields: dict[str, Any]) -> SavedTenant:
        api_key = new_secret()
        tenant = Tenant(id=tenant_id, signing_secret=new_secret(), **fields)
        created = await self._store.tenants.create(tenant, hash_api_key(api_key), self._clock())
        return SavedTenant(await self._view(created), created=True, api_key=api_key)

    async def _update(self, tenant_id: str, fields: dict[str, Any]) -> TenantView:
        updated = await self._store.tenants.update(tenant_id, fields, self._clock())
        if updated is None:
            raise _unknown(tenant_id)
        return await self._view(updated)

    async def _existing(self, tenant_id: str) -> Tenant:
        tenant = await self._store.tenants.get(tenant_id)
        if tenant is None:
            raise _unknown(tenant_id)
        return tenant

    async def _view(self, tenant: Tenant) -> TenantView:
        return TenantView(tenant, await self._store.control.suspensions(tenant.id))


def _unknown(tenant_id: str) -> NotFound:
    return NotFound(f"Unknown tenant {tenant_id!r}")


async def _checked(
    changes: Mapping[str, Any], current: Tenant | None, by: Requester
) -> dict[str, Any]:
    """The fields to store, the callback URL judged by the target policy.

    Whoever sets the URL decides the mark: the admin's URL is trusted, a tenant's
    is judged again each time it is called. An edit that leaves the URL alone keeps
    the mark (an admin renaming a tenant does not vouch for the tenant's URL).
    """
    fields = {
        name: value
        for name, value in changes.items()
        if value is not None or name not in NOT_NULLABLE
    }
    if "client_auth" in fields:
        stored = current.client_auth if current else ClientAuth()
        fields["client_auth"] = _client_auth(fields["client_auth"], stored)
    if fields.get("large_file_config") and current and current.large_file_config:
        fields["large_file_config"] = _large_file_config(
            fields["large_file_config"], current.large_file_config
        )
    url = fields.get("client_base_url")
    if url:
        await by.check_url(url, "client_base_url")
    if current is None or "client_base_url" in fields:
        fields["target_trusted"] = by.is_admin
    return fields


def _client_auth(given: ClientAuth, stored: ClientAuth) -> ClientAuth:
    """The secret the method uses keeps the stored one when not given; the others are
    taken as given (switching from basic to bearer does not keep the password)."""
    if given.method is AuthMethod.BEARER:
        return dataclasses.replace(given, token=_secret("token", given.token, stored.token))
    if given.method is AuthMethod.BASIC:
        password = _secret("password", given.password, stored.password)
        return dataclasses.replace(given, password=password)
    return given


def _large_file_config(given: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """A storage secret not given (or sent back masked) keeps the stored one."""
    secret = kept(given.get("secret_access_key"), stored.get("secret_access_key"))
    return {**given, "secret_access_key": secret}


def _secret(name: str, given: str | None, stored: str | None) -> str:
    secret = kept(given, stored)
    if secret is None:
        raise InvalidInput(
            f"client_auth: the mask stands for the stored {name}, and none is stored",
            field="client_auth",
        )
    return secret
