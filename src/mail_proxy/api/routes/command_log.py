"""The audit trail of state-changing calls (admin only), as JSON or exported.

Entries are written by ``CommandLogMiddleware`` with secrets masked and message
bodies omitted; the export streams every matching entry as CSV or JSON lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mail_proxy.api.deps import AdminCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.domain.models import CommandLogEntry
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import MAX_COUNT, MAX_TS, CommandLogEntryOut, CommandLogResponse

router = APIRouter(tags=["command log"], responses=ERROR_RESPONSES)

EXPORT_PAGE = 500
CSV_COLUMNS = ("id", "ts", "method", "path", "actor", "tenant_id", "status_code", "body")
SinceQuery = Annotated[
    float | None, Query(ge=0, le=MAX_TS, description="Only entries at or after (Unix s).")
]
TenantQuery = Annotated[str | None, Query(description="Only calls acting on this tenant.")]


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
    )


@router.get("/command-log", response_model=CommandLogResponse, summary="Audit trail")
async def command_log(
    _: AdminCaller,
    runtime: RuntimeDep,
    since: SinceQuery = None,
    tenant_id: TenantQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
) -> CommandLogResponse:
    entries = await runtime.store.command_log(
        since=since, tenant_id=tenant_id, limit=limit, offset=offset
    )
    return CommandLogResponse(entries=[entry_out(e) for e in entries])


@router.get(
    "/command-log/export",
    summary="Export the audit trail as CSV or JSON lines",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
)
async def export_command_log(
    _: AdminCaller,
    runtime: RuntimeDep,
    format: Literal["csv", "jsonl"] = "jsonl",
    since: SinceQuery = None,
    tenant_id: TenantQuery = None,
) -> StreamingResponse:
    lines = _entries(runtime, since, tenant_id)
    if format == "csv":
        return StreamingResponse(
            _as_csv(lines),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="command-log.csv"'},
        )
    return StreamingResponse(_as_jsonl(lines), media_type="application/x-ndjson")


async def _entries(
    runtime: Runtime, since: float | None, tenant_id: str | None
) -> AsyncIterator[CommandLogEntryOut]:
    offset = 0
    while True:
        page = await runtime.store.command_log(
            since=since, tenant_id=tenant_id, limit=EXPORT_PAGE, offset=offset
        )
        for entry in page:
            yield entry_out(entry)
        if len(page) < EXPORT_PAGE:
            return
        offset += EXPORT_PAGE


async def _as_jsonl(entries: AsyncIterator[CommandLogEntryOut]) -> AsyncIterator[str]:
    async for entry in entries:
        yield entry.model_dump_json() + "\n"


async def _as_csv(entries: AsyncIterator[CommandLogEntryOut]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for entry in entries:
        row = entry.model_dump()
        row["body"] = json.dumps(row["body"]) if row["body"] is not None else ""
        writer.writerow([row[column] for column in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
