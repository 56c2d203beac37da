"""Instance-wide settings (admin only), including the bounce mailbox.

Answers carry the settings at top level, the bounce mailbox both nested
(``bounce``) and as the reference's flat ``bounce_*`` fields; both forms are
accepted by ``PUT /instance``. The IMAP password is never shown back.

Bounce polling (IMAP, RFC 3464 DSNs) is not part of this version: the bounce
settings are checked and stored, and ``/instance/reload-bounce`` says plainly that
no poller runs yet, so nobody mistakes stored settings for active polling.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError

from mail_proxy import __version__
from mail_proxy.api.deps import AdminCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.errors import InvalidInput
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import (
    MASK,
    BounceSettings,
    InstanceResponse,
    InstanceUpdate,
    ReloadBounceResponse,
)
from mail_proxy.schemas.instance import BOUNCE_FLAT_FIELDS

router = APIRouter(tags=["instance"], responses=ERROR_RESPONSES)

NO_POLLER = (
    "Bounce settings stored. This version does not poll a bounce mailbox yet; "
    "the settings take effect when bounce polling is added."
)


def _masked_bounce(bounce: Any) -> dict[str, Any] | None:
    if not isinstance(bounce, dict):
        return None
    if bounce.get("imap_password"):
        return bounce | {"imap_password": MASK}
    return dict(bounce)


async def _instance_out(runtime: Runtime) -> InstanceResponse:
    stored = await runtime.store.instance.get()
    settings = runtime.settings
    bounce = _masked_bounce(stored.get("bounce"))
    defaults = BounceSettings().model_dump()
    flat = {
        name: (bounce or {}).get(key, defaults[key])
        for name, key in BOUNCE_FLAT_FIELDS.items()
        if key != "imap_password"
    }
    return InstanceResponse(
        name=stored.get("name"),
        bounce=bounce,
        **flat,
        active=await runtime.store.control.instance_active(),
        test_mode=settings.test_mode,
        default_priority=settings.default_priority,
        sync_interval_seconds=int(settings.sync_interval),
        version=__version__,
    )


async def _bounce_changes(runtime: Runtime, bounce: BounceSettings) -> dict[str, Any]:
    """The bounce settings to store; a masked or missing password keeps the stored one."""
    values = bounce.model_dump()
    if values["imap_password"] in (None, MASK):
        current = (await runtime.store.instance.get()).get("bounce")
        values["imap_password"] = (
            current.get("imap_password") if isinstance(current, dict) else None
        )
    return values


async def _flat_bounce(
    runtime: Runtime, body: InstanceUpdate, base: dict[str, Any] | None
) -> BounceSettings | None:
    """The flat ``bounce_*`` fields sent, applied over ``base`` (or what is stored)."""
    sent = {
        BOUNCE_FLAT_FIELDS[name]: getattr(body, name)
        for name in body.model_fields_set & set(BOUNCE_FLAT_FIELDS)
    }
    if not sent:
        return None
    if base is None:
        stored = (await runtime.store.instance.get()).get("bounce")
        base = dict(stored) if isinstance(stored, dict) else {}
    try:
        return BounceSettings.model_validate(base | sent)
    except ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        field = next((flat for flat, name in BOUNCE_FLAT_FIELDS.items() if name == key), key)
        raise InvalidInput(f"{field}: {exc.errors()[0]['msg']}", field=field) from None


@router.get("/instance", response_model=InstanceResponse, summary="Instance settings")
async def get_instance(_: AdminCaller, runtime: RuntimeDep) -> InstanceResponse:
    return await _instance_out(runtime)


@router.put("/instance", response_model=InstanceResponse, summary="Change instance settings")
async def update_instance(
    body: InstanceUpdate, _: AdminCaller, runtime: RuntimeDep
) -> InstanceResponse:
    changes: dict[str, Any] = {}
    if "name" in body.model_fields_set:
        changes["name"] = body.name
    bounce = body.bounce.model_dump() if body.bounce is not None else None
    merged = await _flat_bounce(runtime, body, bounce)
    chosen = merged if merged is not None else body.bounce
    if chosen is not None:
        changes["bounce"] = await _bounce_changes(runtime, chosen)
    if changes:
        await runtime.store.instance.update(changes)
    return await _instance_out(runtime)


@router.post(
    "/instance/reload-bounce",
    response_model=ReloadBounceResponse,
    summary="Apply bounce settings (stored; no poller in this version)",
)
async def reload_bounce(
    _: AdminCaller, runtime: RuntimeDep, body: BounceSettings | None = None
) -> ReloadBounceResponse:
    """With a body, the bounce settings are replaced first; then they are re-read."""
    if body is not None:
        await runtime.store.instance.update({"bounce": await _bounce_changes(runtime, body)})
    stored = (await runtime.store.instance.get()).get("bounce")
    return ReloadBounceResponse(bounce=_masked_bounce(stored), polling=False, detail=NO_POLLER)
