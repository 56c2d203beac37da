"""Instance-wide settings (admin only), including the bounce mailbox.

Answers carry the settings at top level, the bounce mailbox both nested
(``bounce``) and as the reference's flat ``bounce_*`` fields; both forms are
accepted by ``PUT /instance``. The IMAP password is never shown back.

``/instance/reload-bounce`` stores the bounce settings when given and restarts the
bounce poller with them (docs/bounces.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError

from mail_proxy import __version__
from mail_proxy.api.deps import AdminCaller, InstanceServiceDep, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.errors import InvalidInput
from mail_proxy.schemas import (
    BounceSettings,
    InstanceResponse,
    InstanceUpdate,
    ReloadBounceResponse,
)
from mail_proxy.schemas.common import masked
from mail_proxy.schemas.instance import BOUNCE_FLAT_FIELDS
from mail_proxy.services.instance import InstanceView
from mail_proxy.settings import Settings

router = APIRouter(tags=["instance"], responses=ERROR_RESPONSES)

POLLING = "Bounce settings stored; the bounce mailbox poller restarts with them."
NOT_POLLING = "Bounce settings stored; bounce polling is off (enabled false or no imap_host)."


def _masked_bounce(bounce: dict[str, Any] | None) -> dict[str, Any] | None:
    if bounce is None:
        return None
    return bounce | {"imap_password": masked(bounce.get("imap_password"))}


def _instance_out(view: InstanceView, settings: Settings) -> InstanceResponse:
    bounce = _masked_bounce(view.bounce)
    defaults = BounceSettings().model_dump()
    flat = {
        name: (bounce or {}).get(key, defaults[key])
        for name, key in BOUNCE_FLAT_FIELDS.items()
        if key != "imap_password"
    }
    return InstanceResponse(
        name=view.name,
        bounce=bounce,
        **flat,
        active=view.active,
        test_mode=settings.test_mode,
        default_priority=settings.default_priority,
        sync_interval_seconds=int(settings.sync_interval),
        version=__version__,
    )


def _bounce_fields(body: InstanceUpdate) -> dict[str, Any]:
    """The flat ``bounce_*`` fields sent, under the bounce setting names, each judged
    as that setting (``bounce_enabled: null`` is refused: the setting is a boolean)."""
    sent = {
        BOUNCE_FLAT_FIELDS[name]: getattr(body, name)
        for name in body.model_fields_set & set(BOUNCE_FLAT_FIELDS)
    }
    try:
        BounceSettings.model_validate(sent)
    except ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        field = next((flat for flat, name in BOUNCE_FLAT_FIELDS.items() if name == key), key)
        raise InvalidInput(f"{field}: {exc.errors()[0]['msg']}", field=field) from None
    return sent


def _changes(body: InstanceUpdate) -> dict[str, Any]:
    changes: dict[str, Any] = {"name": body.name} if "name" in body.model_fields_set else {}
    if body.bounce is not None:
        changes["bounce"] = body.bounce.model_dump()
    return changes


@router.get("/instance", response_model=InstanceResponse, summary="Instance settings")
async def get_instance(
    _: AdminCaller, runtime: RuntimeDep, instance: InstanceServiceDep
) -> InstanceResponse:
    return _instance_out(await instance.get(), runtime.settings)


@router.put("/instance", response_model=InstanceResponse, summary="Change instance settings")
async def update_instance(
    body: InstanceUpdate, _: AdminCaller, runtime: RuntimeDep, instance: InstanceServiceDep
) -> InstanceResponse:
    view = await instance.update(_changes(body), _bounce_fields(body))
    return _instance_out(view, runtime.settings)


@router.post(
    "/instance/reload-bounce",
    response_model=ReloadBounceResponse,
    summary="Apply bounce settings and restart the bounce poller",
)
async def reload_bounce(
    _: AdminCaller,
    runtime: RuntimeDep,
    instance: InstanceServiceDep,
    body: BounceSettings | None = None,
) -> ReloadBounceResponse:
    """With a body, the bounce settings are replaced first; then they are re-read and
    this process's pollers told to apply them."""
    stored = await instance.reload_bounce(body.model_dump() if body is not None else None)
    if runtime.mailbox_pollers is not None:
        runtime.mailbox_pollers.reload()
    polling = bool(stored and stored.get("enabled") and stored.get("imap_host"))
    detail = POLLING if polling else NOT_POLLING
    return ReloadBounceResponse(bounce=_masked_bounce(stored), polling=polling, detail=detail)
