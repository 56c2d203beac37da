"""The audit trail of state-changing calls (admin only), as JSON or exported.

Entries are written by ``CommandLogMiddleware`` for authenticated calls, with
secrets masked, message bodies omitted and long bodies cut. Filters and field
names follow genro-mail-proxy (``since_ts``, ``until_ts``, ``endpoint_filter``,
``tenant_id``; ``command_ts``, ``endpoint``, ``payload``). The export streams every
matching entry: ``json`` is the replay list (``endpoint, tenant_id, payload,
command_ts`` in call order), ``jsonl`` and ``csv`` carry whole entries.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mail_proxy.api.deps import AdminCaller, AuditDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.domain.models import CommandLogEntry
from mail_proxy.schemas import (
    MAX_COUNT,
    MAX_TS,
    CommandLogEntryOut,
    CommandLogResponse,
    CommandReplayItem,
)
from mail_proxy.services.audit import AuditFilter

router = APIRouter(tags=["command log"], responses=ERROR_RESPONSES)

CSV_COLUMNS = ("id", "ts", "method", "path", "actor", "tenant_id", "status_code", "body")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Cells a spreadsheet would run as a formula (CSV injection, OWASP)."""

SinceQuery = Annotated[
    float | None, Query(ge=0, le=MAX_TS, description="Only entries at or after (Unix s).")
]
UntilQuery = Annotated[
    float | None, Query(ge=0, le=MAX_TS, description="Only entries at or before (Unix s).")
]
TenantQuery = Annotated[
    str | None, Query(max_length=255, description="Only calls acting on this tenant.")
]
EndpointQuery = Annotated[
    str | None,
    Query(max_length=255, description="Only calls whose `METHOD /path` contains this text."),
]
ExportFormat = Literal["json", "jsonl", "csv"]
OldSinceQuery = Annotated[
    float | None, Query(ge=0, le=MAX_TS, description="Former name of `since_ts`.")
]


def entry_out(entry: CommandLogEntry) -> CommandLogEntryOut:
    return CommandLogEntryOut(
        id=entry.id,
        ts=entry.ts,
        method=entry.method,
        path=entry.path,
        actor=entry.actor,
        tenant_id=entry.tenant_id,
        status_code=entry.status_code,
        body=entry.body,
        command_ts=entry.ts,
        endpoint=f"{entry.method} {entry.path}",
        payload=entry.body,
        response_status=entry.status_code,
    )


@router.get("/command-log", response_model=CommandLogResponse, summary="Audit trail")
async def command_log(
    _: AdminCaller,
    audit: AuditDep,
    since_ts: SinceQuery = None,
    until_ts: UntilQuery = None,
    tenant_id: TenantQuery = None,
    endpoint_filter: EndpointQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
    since: OldSinceQuery = None,
) -> CommandLogResponse:
    flt = AuditFilter(_since(since_ts, since), until_ts, tenant_id, endpoint_filter)
    entries = await audit.entries(flt, limit=limit, offset=offset)
    return CommandLogResponse(entries=[entry_out(e) for e in entries])


@router.get(
    "/command-log/export",
    summary="Export the audit trail for replay (JSON), as JSON lines or as CSV",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/CommandReplayItem"},
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def export_command_log(
    _: AdminCaller,
    audit: AuditDep,
    format: ExportFormat = "json",
    since_ts: SinceQuery = None,
    until_ts: UntilQuery = None,
    tenant_id: TenantQuery = None,
    endpoint_filter: EndpointQuery = None,
    since: OldSinceQuery = None,
) -> StreamingResponse:
    flt = AuditFilter(_since(since_ts, since), until_ts, tenant_id, endpoint_filter)
    return _streamed(_shaped(audit.export(flt)), format)


def _streamed(
    entries: AsyncIterator[CommandLogEntryOut], format: ExportFormat
) -> StreamingResponse:
    if format == "csv":
        return StreamingResponse(
            _as_csv(entries),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="command-log.csv"'},
        )
    if format == "jsonl":
        return StreamingResponse(_as_jsonl(entries), media_type="application/x-ndjson")
    return StreamingResponse(_as_replay(entries), media_type="application/json")


def _since(since_ts: float | None, since: float | None) -> float | None:
    """``since_ts``, or its former name ``since`` when only that was given."""
    return since_ts if since_ts is not None else since


async def _shaped(entries: AsyncIterator[CommandLogEntry]) -> AsyncIterator[CommandLogEntryOut]:
    async for entry in entries:
        yield entry_out(entry)


async def _as_replay(entries: AsyncIterator[CommandLogEntryOut]) -> AsyncIterator[str]:
    separator = "["
    async for entry in entries:
        item = CommandReplayItem(
            endpoint=entry.endpoint,
            tenant_id=entry.tenant_id,
            payload=entry.payload,
            command_ts=entry.command_ts,
        )
        yield separator + item.model_dump_json()
        separator = ","
    yield "[]" if separator == "[" else "]"


async def _as_jsonl(entries: AsyncIterator[CommandLogEntryOut]) -> AsyncIterator[str]:
    async for entry in entries:
        yield entry.model_dump_json() + "\n"


def safe_cell(value: object) -> str:
    """A CSV cell no spreadsheet runs: text starting like a formula gets a ``'`` first."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


async def _as_csv(entries: AsyncIterator[CommandLogEntryOut]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for entry in entries:
        row = entry.model_dump()
        row["body"] = "" if row["body"] is None else json.dumps(row["body"], ensure_ascii=False)
        writer.writerow([safe_cell(row[column]) for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
