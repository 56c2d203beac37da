"""Envelope models every endpoint shares: the ok/error bodies and service status."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

MASK = "********"
"""Shown instead of a stored secret; sending it back unchanged keeps the secret."""


def masked(secret: str | None) -> str | None:
    """What an answer shows of a write-only secret: the mask when one is stored."""
    return MASK if secret else None


def _unmasked(secret: str | None) -> str | None:
    return None if secret == MASK else secret


WriteOnlySecret = Annotated[str | None, AfterValidator(_unmasked)]
"""A secret that goes in and never comes out. The mask a read showed, sent back, is
read as ``None``: past parsing, ``None`` means "keep the stored secret", so a client
can send back what it read without knowing the secret (and without erasing it)."""

MAX_COUNT = 2**31 - 1
"""Upper bound of counts, limits and offsets: every database stores it as an integer."""
MAX_TS = 253_402_300_799
"""Upper bound of Unix-second timestamps (9999-12-31T23:59:59Z)."""


def examples(*items: JsonDict) -> ConfigDict:
    """Model config carrying OpenAPI examples (shown in /docs and /redoc)."""
    return ConfigDict(json_schema_extra={"examples": list(items)})


class FieldError(BaseModel):
    """One failing input field: where it is and what is wrong (never its value)."""

    field: str = Field(description="Location, e.g. `body.messages` or `query.limit`.")
    message: str

    model_config = examples({"field": "query.limit", "message": "Input should be >= 1"})


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: ``ok`` false and a sentence a person can act on."""

    ok: Literal[False] = False
    error: str
    detail: str = Field(
        description="The same text as `error`, for clients written for FastAPI's `detail`."
    )
    fields: list[FieldError] | None = Field(
        default=None, description="Present on validation errors: the failing fields."
    )

    model_config = examples(
        {
            "ok": False,
            "error": "Token not authorized for this tenant",
            "detail": "Token not authorized for this tenant",
        },
        {
            "ok": False,
            "error": "Invalid request: query.limit",
            "detail": "Invalid request: query.limit",
            "fields": [{"field": "query.limit", "message": "Input should be >= 1"}],
        },
    )


class OkResponse(BaseModel):
    ok: Literal[True] = True

    model_config = examples({"ok": True})


class StatusResponse(BaseModel):
    """Scheduler state and queue size; ``pending`` counts pending and deferred messages."""

    ok: Literal[True] = True
    active: bool = Field(description="Whether the dispatcher is sending (instance not suspended).")
    pending: int = Field(description="Messages not yet sent or failed (caller's scope).")
    uptime_seconds: int
    version: str

    model_config = examples(
        {"ok": True, "active": True, "pending": 12, "uptime_seconds": 3600, "version": "0.1.0"}
    )
