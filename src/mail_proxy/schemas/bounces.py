"""Wire models of bounces and the suppression list (docs/bounces.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mail_proxy.schemas.common import examples


class BounceOut(BaseModel):
    """One failed recipient read from a bounce; ``tenant_id`` null when unmatched."""

    id: int
    ts: int = Field(description="When the bounce was read (Unix seconds).")
    mailbox: str
    tenant_id: str | None
    message_id: str | None
    matched_by: str = Field(description="mail_id, message_id, recipient or none.")
    recipient: str
    bounce_type: str = Field(description="hard or soft.")
    bounce_code: str | None = Field(description="RFC 3463 status (5.1.1) or SMTP code.")
    bounce_reason: str


class BounceListResponse(BaseModel):
    ok: Literal[True] = True
    bounces: list[BounceOut]


class SuppressionOut(BaseModel):
    tenant_id: str
    address: str
    reason: str
    bounce_id: int | None = Field(description="The bounce that caused it; null if by hand.")
    created_at: int


class SuppressionListResponse(BaseModel):
    ok: Literal[True] = True
    suppressions: list[SuppressionOut]


class SuppressionIn(BaseModel):
    """``POST /suppressions``: stop mailing an address (the admin names the tenant)."""

    tenant_id: str | None = Field(default=None, max_length=128)
    address: str = Field(min_length=3, max_length=256)
    reason: str | None = Field(default=None, max_length=500)

    model_config = examples({"address": "former.customer@example.com", "reason": "asked to stop"})


class SuppressionAddResponse(BaseModel):
    ok: Literal[True] = True
    created: bool = Field(description="False when the address was listed already.")
