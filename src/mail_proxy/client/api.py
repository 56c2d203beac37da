"""Every endpoint of the API, described once as a plan (see ``calls``).

The names follow the reference client (``messages.list/pending/sent/errors/get/add/
delete/cleanup``, ``accounts.list/get/add/delete``, ``tenants.list/get/add/delete``,
``status``, ``health``, ``run_now``, ``suspend``, ``activate``, ``stats``; its
``messages.enqueue`` and ``accounts.create``/``tenants.create`` too), and the rest of
the API gets methods of the same kind. Methods answer the API's own pydantic models
(``mail_proxy.schemas``), except where the reference answers something the API has
no endpoint for: ``accounts.get`` (one ``AccountOut`` out of the listing) and
``stats`` (counts gathered from several listings).

Bodies are sent as given: a dict, or one of the schemas' input models (dumped with
the API's field names, e.g. ``from``). The SDK does not validate them first — the
API judges each message on its own, so one bad message must not stop the batch.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, Field

from mail_proxy.client.bounces import Bounces
from mail_proxy.client.calls import Call, Plan, Query, model, text
from mail_proxy.client.errors import AuthenticationError, NotFound
from mail_proxy.client.runners import R, Resource, op
from mail_proxy.schemas import (
    AccountListResponse,
    AccountOut,
    AccountSaveResponse,
    AddMessagesResponse,
    ApiKeyResponse,
    CleanupResponse,
    CommandLogResponse,
    DeleteMessagesResponse,
    InstanceResponse,
    InstanceStatusResponse,
    MessageEventsResponse,
    MessageListResponse,
    MessageOut,
    MessageResponse,
    OkResponse,
    ReloadBounceResponse,
    RemovedResponse,
    RunNowResponse,
    SigningSecretResponse,
    SuspensionResponse,
    SyncStatusResponse,
    TenantListResponse,
    TenantResponse,
    TenantSaveResponse,
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Body = BaseModel | Mapping[str, Any]
MessageStatus = Literal["pending", "deferred", "sent", "error"]
ExportFormat = Literal["json", "jsonl", "csv"]
STATUSES: tuple[MessageStatus, ...] = ("pending", "deferred", "sent", "error")


def ask(call: Call[T]) -> Plan[T]:
    """The plan of one call: its result."""
    value: T = yield call
    return value


def get(path: str, kind: type[M], params: Query | None = None) -> Plan[M]:
    """A read: always repeatable."""
    return ask(Call("GET", path, model(kind), params or {}, repeatable=True))


def send(
    method: str,
    path: str,
    kind: type[M],
    *,
    params: Query | None = None,
    json: Any = None,
    repeatable: bool = False,
) -> Plan[M]:
    return ask(Call(method, path, model(kind), params or {}, json, repeatable))


def _seg(value: str) -> str:
    """``value`` as one path segment: a ``/`` or ``?`` in an id cannot change the path."""
    return quote(value, safe="")


def body(item: Body | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of ``item`` (a model: only the fields set, by their API
    names) with ``fields`` on top."""
    if isinstance(item, BaseModel):
        base = item.model_dump(mode="json", by_alias=True, exclude_unset=True)
    else:
        base = dict(item or {})
    return base | dict(fields)


def _page(
    tenant_id: str | None, limit: int, offset: int, **filters: str | bool | None
) -> Plan[MessageListResponse]:
    """One page of ``GET /messages``: every listing of the SDK is one of these."""
    params = {"tenant_id": tenant_id, "limit": limit, "offset": offset} | filters
    return get("/messages", MessageListResponse, params)


class Messages(Resource[R]):
    """The queue: ``POST /commands/add-messages``, ``GET /messages`` and friends."""

    @op
    def list(
        self,
        tenant_id: str | None = None,
        status: MessageStatus | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        active_only: bool = False,
        batch_code: str | None = None,
        account_id: str | None = None,
        include_history: bool = False,
    ) -> Plan[MessageListResponse]:
        """One page of queue records; ``next_offset`` in the answer fetches the next.
        An admin token without ``tenant_id`` lists every tenant's messages."""
        return (
            yield from _page(
                tenant_id,
                limit,
                offset,
                status=status,
                active_only=active_only,
                batch_code=batch_code,
                account_id=account_id,
                include_history=include_history,
            )
        )

    @op
    def all(
        self, tenant_id: str | None = None, status: MessageStatus | None = None
    ) -> Plan[builtins.list[MessageOut]]:
        """Every matching record, page after page (``next_offset``) until the last."""
        found: builtins.list[MessageOut] = []
        offset: int | None = 0
        while offset is not None:
            page = yield from _page(tenant_id, 1000, offset, status=status)
            found.extend(page.messages)
            offset = page.next_offset
        return found

    @op
    def pending(
        self, tenant_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Plan[MessageListResponse]:
        """Messages still to send: pending, and deferred to later (``active_only``)."""
        return (yield from _page(tenant_id, limit, offset, active_only=True))

    @op
    def sent(
        self, tenant_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Plan[MessageListResponse]:
        """Messages an SMTP server accepted."""
        return (yield from _page(tenant_id, limit, offset, status="sent"))

    @op
    def errors(
        self, tenant_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Plan[MessageListResponse]:
        """Messages that failed for good."""
        return (yield from _page(tenant_id, limit, offset, status="error"))

    @op
    def get(self, message_id: str, tenant_id: str | None = None) -> Plan[MessageResponse]:
        """One record whole: payload as queued (secrets removed) and its history."""
        params = {"tenant_id": tenant_id}
        return (yield from get(f"/messages/{_seg(message_id)}", MessageResponse, params))

    @op
    def events(self, message_id: str, tenant_id: str | None = None) -> Plan[MessageEventsResponse]:
        """The message's events: sent, deferred, error, bounce, pec_*."""
        path = f"/messages/{_seg(message_id)}/events"
        return (yield from get(path, MessageEventsResponse, {"tenant_id": tenant_id}))

    @op
    def add(
        self,
        messages: Sequence[Body],
        tenant_id: str | None = None,
        *,
        default_priority: int | str | None = None,
    ) -> Plan[AddMessagesResponse]:
        """Queue a batch. ``tenant_id`` fills messages that name none (a tenant token
        fills it anyway). Messages refused are listed in ``rejected``; when none was
        queued this raises ``ValidationError`` with that list. Retried after a lost
        connection: the API keys messages by id, and a resubmitted unsent id replaces
        the first copy, so a repeat never queues a message twice."""
        filled = {"tenant_id": tenant_id} if tenant_id is not None else {}
        items = [filled | body(m, {}) for m in messages]
        payload: dict[str, Any] = {"messages": items}
        if default_priority is not None:
            payload["default_priority"] = default_priority
        path = "/commands/add-messages"
        return (yield from send("POST", path, AddMessagesResponse, json=payload, repeatable=True))

    @op
    def enqueue(self, message: Body, tenant_id: str | None = None) -> Plan[AddMessagesResponse]:
        """One message (the reference client's name); see ``add``."""
        return (yield from Messages.add.plan(self, [message], tenant_id))

    @op
    def delete(
        self, ids: Sequence[str], tenant_id: str | None = None
    ) -> Plan[DeleteMessagesResponse]:
        """Remove messages from the queue: ``removed`` counts them, ``not_found`` and
        ``unauthorized`` list the others. Not retried once sent (a repeat would
        answer ``not_found`` for what the first call removed)."""
        return (
            yield from send(
                "POST",
                "/commands/delete-messages",
                DeleteMessagesResponse,
                params={"tenant_id": tenant_id},
                json={"ids": list(ids)},
            )
        )

    @op
    def cleanup(
        self, tenant_id: str | None = None, older_than_seconds: int | None = None
    ) -> Plan[CleanupResponse]:
        """Drop sent or failed, reported messages older than the cut-off (default:
        the proxy's retention)."""
        cutoff = older_than_seconds
        payload = {"older_than_seconds": cutoff} if cutoff is not None else None
        return (
            yield from send(
                "POST",
                "/commands/cleanup-messages",
                CleanupResponse,
                params={"tenant_id": tenant_id},
                json=payload,
            )
        )


class Accounts(Resource[R]):
    """SMTP accounts of a tenant (passwords are write-only: answers say ``has_password``)."""

    @op
    def list(self, tenant_id: str | None = None) -> Plan[AccountListResponse]:
        """An admin token without ``tenant_id`` lists every tenant's accounts."""
        return (yield from get("/accounts", AccountListResponse, {"tenant_id": tenant_id}))

    @op
    def get(self, account_id: str, tenant_id: str | None = None) -> Plan[AccountOut]:
        """One account, found in the tenant's listing (the API has no single read)."""
        listed = yield from get("/accounts", AccountListResponse, {"tenant_id": tenant_id})
        for account in listed.accounts:
            if account.id == account_id:
                return account
        raise NotFound(f"Account {account_id!r} not found", 404)

    @op
    def add(self, account: Body | None = None, /, **fields: Any) -> Plan[AccountSaveResponse]:
        """Create or replace an account, from a dict, an ``AccountIn`` or keywords.
        Retried after a lost connection: saving the same account again is harmless."""
        payload = body(account, fields)
        return (
            yield from send("POST", "/account", AccountSaveResponse, json=payload, repeatable=True)
        )

    create = add
    """The reference client's name."""

    @op
    def delete(self, account_id: str, tenant_id: str | None = None) -> Plan[RemovedResponse]:
        path = f"/account/{_seg(account_id)}"
        return (yield from send("DELETE", path, RemovedResponse, params={"tenant_id": tenant_id}))


class Tenants(Resource[R]):
    """Tenants (admin token), their API keys and signing secrets."""

    @op
    def list(self, active_only: bool = False) -> Plan[TenantListResponse]:
        return (
            yield from get("/tenants", TenantListResponse, {"active_only": active_only or None})
        )

    @op
    def get(self, tenant_id: str) -> Plan[TenantResponse]:
        return (yield from get(f"/tenant/{_seg(tenant_id)}", TenantResponse))

    @op
    def add(self, tenant: Body | None = None, /, **fields: Any) -> Plan[TenantSaveResponse]:
        """Create a tenant (``api_key`` in the answer, shown this once) or update the
        fields sent. Not retried once sent: a repeat would not show the key again."""
        return (yield from send("POST", "/tenant", TenantSaveResponse, json=body(tenant, fields)))

    create = add
    """The reference client's name."""

    @op
    def update(
        self, tenant_id: str, changes: Body | None = None, /, **fields: Any
    ) -> Plan[TenantResponse]:
        """Change only the fields sent (``PUT /tenant/{id}``)."""
        path = f"/tenant/{_seg(tenant_id)}"
        payload = body(changes, fields)
        return (yield from send("PUT", path, TenantResponse, json=payload, repeatable=True))

    @op
    def delete(self, tenant_id: str) -> Plan[RemovedResponse]:
        """Remove a tenant with its accounts and messages."""
        return (yield from send("DELETE", f"/tenant/{_seg(tenant_id)}", RemovedResponse))

    @op
    def rotate_api_key(self, tenant_id: str, expires_at: int | None = None) -> Plan[ApiKeyResponse]:
        """A new API key (in the answer, shown this once); the old one stops working."""
        path = f"/tenant/{_seg(tenant_id)}/api-key"
        payload = {"expires_at": expires_at} if expires_at is not None else None
        return (yield from send("POST", path, ApiKeyResponse, json=payload))

    @op
    def revoke_api_key(self, tenant_id: str) -> Plan[TenantResponse]:
        return (yield from send("DELETE", f"/tenant/{_seg(tenant_id)}/api-key", TenantResponse))

    @op
    def signing_secret(self, tenant_id: str) -> Plan[str | None]:
        """The secret the proxy signs this tenant's client sync calls with."""
        tenant = yield from get(f"/tenant/{_seg(tenant_id)}", TenantResponse)
        return tenant.signing_secret

    @op
    def rotate_signing_secret(self, tenant_id: str) -> Plan[SigningSecretResponse]:
        """A new signing secret; calls signed from now on use it."""
        path = f"/tenant/{_seg(tenant_id)}/signing-secret"
        return (yield from send("POST", path, SigningSecretResponse))

    @op
    def sync_status(self) -> Plan[SyncStatusResponse]:
        """Client-sync schedule of every active tenant."""
        return (yield from get("/tenants/sync-status", SyncStatusResponse))


class Instance(Resource[R]):
    """Instance-wide settings (admin token), the bounce mailbox among them."""

    @op
    def get(self) -> Plan[InstanceResponse]:
        return (yield from get("/instance", InstanceResponse))

    @op
    def update(self, changes: Body | None = None, /, **fields: Any) -> Plan[InstanceResponse]:
        payload = body(changes, fields)
        return (
            yield from send("PUT", "/instance", InstanceResponse, json=payload, repeatable=True)
        )

    @op
    def reload_bounce(self, bounce: Body | None = None) -> Plan[ReloadBounceResponse]:
        """Apply the bounce settings (replaced first by ``bounce`` when given)."""
        payload = body(bounce, {}) if bounce is not None else None
        path = "/instance/reload-bounce"
        return (yield from send("POST", path, ReloadBounceResponse, json=payload, repeatable=True))


class CommandLog(Resource[R]):
    """The audit trail of state-changing API calls (admin token), secrets masked."""

    @op
    def list(
        self,
        since_ts: float | None = None,
        until_ts: float | None = None,
        tenant_id: str | None = None,
        endpoint_filter: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Plan[CommandLogResponse]:
        params = {
            "since_ts": since_ts,
            "until_ts": until_ts,
            "tenant_id": tenant_id,
            "endpoint_filter": endpoint_filter,
            "limit": limit,
            "offset": offset,
        }
        return (yield from get("/command-log", CommandLogResponse, params))

    @op
    def export(
        self,
        format: ExportFormat = "json",
        since_ts: float | None = None,
        until_ts: float | None = None,
        tenant_id: str | None = None,
        endpoint_filter: str | None = None,
    ) -> Plan[str]:
        """Every matching entry as the server wrote it: ``json`` the replay list,
        ``jsonl`` and ``csv`` whole entries."""
        params = {
            "format": format,
            "since_ts": since_ts,
            "until_ts": until_ts,
            "tenant_id": tenant_id,
            "endpoint_filter": endpoint_filter,
        }
        return (yield from ask(Call("GET", "/command-log/export", text, params, repeatable=True)))


class Stats(BaseModel):
    """Counts of the caller's scope (the reference's ``stats()``)."""

    tenants: int = Field(description="Tenants in scope (1 for a tenant token or tenant_id).")
    accounts: int
    messages: dict[str, int] = Field(description="Records per status.")


class Api(Resource[R]):
    """What both clients offer: the resource groups and the instance-wide calls."""

    def __init__(self, runner: R) -> None:
        super().__init__(runner)
        self.messages: Messages[R] = Messages(runner)
        self.accounts: Accounts[R] = Accounts(runner)
        self.tenants: Tenants[R] = Tenants(runner)
        self.instance: Instance[R] = Instance(runner)
        self.command_log: CommandLog[R] = CommandLog(runner)
        self.bounces: Bounces[R] = Bounces(runner)

    @op
    def health(self) -> Plan[OkResponse]:
        """Liveness; needs no token."""
        return (yield from get("/health", OkResponse))

    @op
    def status(self) -> Plan[InstanceStatusResponse]:
        """Whether sending is on, pending count (the token's scope), uptime, version."""
        return (yield from get("/status", InstanceStatusResponse))

    @op
    def metrics(self) -> Plan[str]:
        """The Prometheus text exposition."""
        return (yield from ask(Call("GET", "/metrics", text, repeatable=True)))

    @op
    def run_now(self, tenant_id: str | None = None) -> Plan[RunNowResponse]:
        """Send and report now: every tenant (admin, Do Not Disturb respected), or one
        (its Do Not Disturb cleared)."""
        params = {"tenant_id": tenant_id}
        return (
            yield from send(
                "POST", "/commands/run-now", RunNowResponse, params=params, repeatable=True
            )
        )

    @op
    def suspend(
        self, tenant_id: str | None = None, batch_code: str | None = None
    ) -> Plan[SuspensionResponse]:
        """Stop sending: a tenant (``batch_code`` omitted or ``*``), one of its batches,
        or — admin without ``tenant_id`` — the whole instance."""
        return (yield from _switch("suspend", tenant_id, batch_code))

    @op
    def activate(
        self, tenant_id: str | None = None, batch_code: str | None = None
    ) -> Plan[SuspensionResponse]:
        """Resume sending; without ``batch_code`` every suspension of the scope ends."""
        return (yield from _switch("activate", tenant_id, batch_code))

    @op
    def stats(self, tenant_id: str | None = None) -> Plan[Stats]:
        """Tenants, accounts and messages per status, in the caller's scope."""
        tenants = 1 if tenant_id is not None else (yield from _tenant_count())
        accounts = yield from get("/accounts", AccountListResponse, {"tenant_id": tenant_id})
        counts: dict[str, int] = {}
        for status in STATUSES:
            counts[status] = (yield from _page(tenant_id, 1, 0, status=status)).total
        return Stats(tenants=tenants, accounts=len(accounts.accounts), messages=counts)


def _tenant_count() -> Plan[int]:
    """Tenants the caller sees: all of them for the admin, its own for a tenant token
    (which ``GET /tenants``, admin only, refuses with 403)."""
    try:
        listed = yield from get("/tenants", TenantListResponse)
    except AuthenticationError as exc:
        if exc.status_code != 403:
            raise
        return 1
    return len(listed.tenants)


def _switch(
    command: Literal["suspend", "activate"], tenant_id: str | None, batch_code: str | None
) -> Plan[SuspensionResponse]:
    params = {"tenant_id": tenant_id, "batch_code": batch_code}
    path = f"/commands/{command}"
    return send("POST", path, SuspensionResponse, params=params, repeatable=True)
