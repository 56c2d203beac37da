"""The port through which the sync loop calls an application's sync endpoint.

The sync loop hands over a ready body and a ``SyncTarget`` and gets back either a
``SyncAnswer`` (the application acknowledged the batch) or a ``SyncFailure``
(anything else: the batch stays unreported and is sent again later). How the
answer body is judged lives here, apart from the transport, so every transport
applies the same rule: a 2xx acknowledges unless its JSON body says ``"ok"`` is
something other than ``true``. A 2xx without an ``ok`` field (or not JSON at all)
acknowledges too: applications written for the reference answer
``{"status": "ok"}``, and refusing those re-sent the same reports forever.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mail_proxy.domain.models import AuthMethod, ClientAuth, Tenant
from mail_proxy.domain.text import storable
from mail_proxy.settings import Settings


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """Where and how to call: URL, the application's auth, and the secret to sign with."""

    url: str
    auth: ClientAuth = field(default_factory=ClientAuth)
    signing_secret: str | None = None
    #: Chosen by the operator or the admin: may point at private addresses.
    trusted: bool = False


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    """An acknowledged call. ``errors``/``not_found`` are ids the application flagged.

    ``implied`` marks a 2xx that acknowledged without an ``ok`` field.
    """

    status_code: int
    queued: int = 0
    next_sync_after: float | None = None
    errors: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    implied: bool = False


class FailureKind(StrEnum):
    """Why a call did not acknowledge its batch; also the ``outcome`` metric label."""

    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    INVALID_URL = "invalid_url"
    HTTP_STATUS = "http_error"
    INVALID_ANSWER = "invalid_answer"
    NOT_OK = "not_ok"
    TARGET_REFUSED = "target_refused"


@dataclass(frozen=True, slots=True)
class SyncFailure:
    kind: FailureKind
    detail: str
    status_code: int | None = None


SyncResult = SyncAnswer | SyncFailure


def target_for(tenant: Tenant, settings: Settings) -> SyncTarget | None:
    """The tenant's own endpoint, else the global ``GMP_CLIENT_SYNC_URL``, else None.

    The global URL is shared by tenants, so it is signed with its own secret
    (``GMP_CLIENT_SYNC_SIGNING_SECRET``), never with one tenant's.
    """
    if tenant.sync_url is not None:
        return SyncTarget(
            tenant.sync_url, tenant.client_auth, tenant.signing_secret, tenant.target_trusted
        )
    if not settings.client_sync_url:
        return None
    return SyncTarget(
        settings.client_sync_url,
        _global_auth(settings),
        settings.client_sync_signing_secret,
        trusted=True,
    )


def _global_auth(settings: Settings) -> ClientAuth:
    if settings.client_sync_token:
        return ClientAuth(AuthMethod.BEARER, token=settings.client_sync_token)
    if settings.client_sync_user:
        return ClientAuth(
            AuthMethod.BASIC,
            user=settings.client_sync_user,
            password=settings.client_sync_password,
        )
    return ClientAuth()


class SyncClient(ABC):
    """Sends one signed sync call; never raises for what the network or peer did."""

    @abstractmethod
    async def send(self, target: SyncTarget, body: bytes, now: float) -> SyncResult:
        """POST ``body`` to the target, signed at ``now``; the judged answer."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close pooled connections."""


def judge_answer(status_code: int, body: bytes) -> SyncResult:
    """Apply the protocol's rule to a received answer (status and raw body).

    Only an explicit ``ok`` other than ``true`` refuses a 2xx; without the field
    the answer acknowledges, flagged ``implied`` so the sync loop can warn.
    """
    if not 200 <= status_code < 300:
        return SyncFailure(FailureKind.HTTP_STATUS, f"HTTP {status_code}", status_code)
    data = _object(body)
    if "ok" in data and data["ok"] is not True:
        return SyncFailure(FailureKind.NOT_OK, _error_text(data.get("error")), status_code)
    return SyncAnswer(
        status_code=status_code,
        queued=_count(data.get("queued")),
        next_sync_after=_timestamp(data.get("next_sync_after")),
        errors=_ids(data.get("error")),
        not_found=_ids(data.get("not_found")),
        implied="ok" not in data,
    )


def _object(body: bytes) -> dict[str, Any]:
    """The answer's JSON object; empty when the body is not JSON or not an object."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def _timestamp(value: Any) -> float | None:
    """A number as float (an integer too large for one becomes infinity: the
    sync loop refuses it with the other absurd values); anything else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return None


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [storable(str(item), 200) for item in value]


def _error_text(value: Any) -> str:
    """A short reason for the log; application text is cut so it cannot flood it."""
    return storable("ok is not true" if value is None else str(value), 200)
