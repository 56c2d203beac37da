"""Instance-wide settings (admin only), including the bounce mailbox.

Bounce polling (IMAP, RFC 3464 DSNs) is not part of this version: the bounce
settings are checked and stored, and ``/instance/reload-bounce`` says plainly that
no poller runs yet, so nobody mistakes stored settings for active polling.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mail_proxy import __version__
from mail_proxy.api.deps import AdminCaller, RuntimeDep
from mail_proxy.api.errors import ERROR_RESPONSES
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import (
    MASK,
    BounceSettings,
    InstanceOut,
    InstanceResponse,
    InstanceUpdate,
    ReloadBounceResponse,
)

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


async def _instance_out(runtime: Runtime) -> InstanceOut:
    stored = await runtime.store.get_instance_settings()
    settings = runtime.settings
    return InstanceOut(
        name=stored.get("name"),
        bounce=_masked_bounce(stored.get("bounce")),
        active=runtime.dispatcher.active,
        test_mode=settings.test_mode,
        default_priority=settings.default_priority,
        sync_interval_seconds=int(settings.sync_interval),
        version=__version__,
    )


async def _bounce_changes(runtime: Runtime, bounce: BounceSettings) -> dict[str, Any]:
    """The bounce settings to store; a masked or missing password keeps the stored one."""
    values = bounce.model_dump()
    if values["imap_password"] in (None, MASK):
        current = (await runtime.store.get_instance_settings()).get("bounce")
        values["imap_password"] = (
            current.get("imap_password") if isinstance(current, dict) else None
        )
    return values


@router.get("/instance", response_model=InstanceResponse, summary="Instance settings")
async def get_instance(_: AdminCaller, runtime: RuntimeDep) -> InstanceResponse:
    return InstanceResponse(instance=await _instance_out(runtime))


@router.put("/instance", response_model=InstanceResponse, summary="Change instance settings")
async def update_instance(
    body: InstanceUpdate, _: AdminCaller, runtime: RuntimeDep
) -> InstanceResponse:
    changes = body.model_dump(exclude_unset=True, exclude={"bounce"})
    if body.bounce is not None:
        changes["bounce"] = await _bounce_changes(runtime, body.bounce)
    if changes:
        await runtime.store.update_instance_settings(changes)
    return InstanceResponse(instance=await _instance_out(runtime))


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
        await runtime.store.update_instance_settings(
            {"bounce": await _bounce_changes(runtime, body)}
        )
    stored = (await runtime.store.get_instance_settings()).get("bounce")
    return ReloadBounceResponse(bounce=_masked_bounce(stored), polling=False, detail=NO_POLLER)
