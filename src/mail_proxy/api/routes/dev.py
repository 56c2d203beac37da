"""``GET /dev/messages``: what the development SMTP sink received.

Mounted only when the proxy runs with ``--dev-sink``; a production proxy has no
such route at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mail_proxy.api.deps import AdminCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES

router = APIRouter(tags=["development"], responses=ERROR_RESPONSES)


class DevMessagesResponse(BaseModel):
    ok: bool = True
    count: int = Field(description="Messages kept by the sink (the most recent 1,000).")
    messages: list[dict[str, Any]] = Field(
        description="Newest first: envelope, main headers and the text body.",
        examples=[
            [
                {
                    "received_at": 1764500000,
                    "mail_from": "demo@example.com",
                    "recipients": ["you@example.com"],
                    "subject": "Hello",
                    "from": "Mail Proxy Demo <demo@example.com>",
                    "to": "you@example.com",
                    "message_id": "<...@mail-proxy>",
                    "mail_id": "hello-1",
                    "size": 612,
                    "body": "It works.\n",
                }
            ]
        ],
    )


@router.get(
    "/dev/messages",
    response_model=DevMessagesResponse,
    summary="Messages received by the development SMTP sink (--dev-sink only)",
)
async def dev_messages(
    _: AdminCaller, runtime: RuntimeDep, limit: int = Query(default=50, ge=1, le=1000)
) -> DevMessagesResponse:
    sink = runtime.dev_sink
    received = list(reversed(sink.messages)) if sink is not None else []
    return DevMessagesResponse(
        count=len(received), messages=[m.to_json() for m in received[:limit]]
    )
