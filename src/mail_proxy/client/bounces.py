"""Bounces and the suppression list (docs/bounces.md): tenant-scoped with a tenant
token; the admin names a tenant or reads every tenant's (and unmatched bounces)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from mail_proxy.client.calls import Call, Plan, Query, model, text
from mail_proxy.client.runners import R, Resource, op
from mail_proxy.schemas import (
    BounceListResponse,
    OkResponse,
    SuppressionAddResponse,
    SuppressionListResponse,
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _call(call: Call[T]) -> Plan[T]:
    value: T = yield call
    return value


def _read(path: str, kind: type[M], params: Query) -> Plan[M]:
    return _call(Call("GET", path, model(kind), params, repeatable=True))


class Bounces(Resource[R]):
    @op
    def list(
        self,
        tenant_id: str | None = None,
        unmatched: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> Plan[BounceListResponse]:
        """Bounces read from the bounce mailbox, newest first; ``unmatched`` (admin)
        lists those no message matched."""
        params = {"tenant_id": tenant_id, "unmatched": unmatched or None, "limit": limit,
                  "offset": offset}  # fmt: skip
        return (yield from _read("/bounces", BounceListResponse, params))

    @op
    def suppressions(
        self, tenant_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Plan[SuppressionListResponse]:
        params = {"tenant_id": tenant_id, "limit": limit, "offset": offset}
        return (yield from _read("/suppressions", SuppressionListResponse, params))

    @op
    def suppress(
        self, address: str, tenant_id: str | None = None, reason: str | None = None
    ) -> Plan[SuppressionAddResponse]:
        """Stop mailing ``address``; ``created`` false when it was listed already."""
        json = {"tenant_id": tenant_id, "address": address, "reason": reason}
        parse = model(SuppressionAddResponse)
        return (yield from _call(Call("POST", "/suppressions", parse, {}, json, True)))

    @op
    def unsuppress(self, address: str, tenant_id: str | None = None) -> Plan[OkResponse]:
        """Mail ``address`` again (NotFound when it was not listed)."""
        params = {"tenant_id": tenant_id, "address": address}
        return (yield from _call(Call("DELETE", "/suppressions", model(OkResponse), params)))

    @op
    def export_suppressions(self, tenant_id: str | None = None) -> Plan[str]:
        """The whole list in scope as JSON lines."""
        params = {"tenant_id": tenant_id}
        return (
            yield from _call(Call("GET", "/suppressions/export", text, params, repeatable=True))
        )
