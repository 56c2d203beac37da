"""Instance-wide settings: the instance name and the bounce mailbox.

Bounce polling (IMAP, RFC 3464 DSNs) is not part of this version: the bounce
settings are stored, whole, for the poller to come. The IMAP password is
write-only: a save that gives none keeps the stored one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mail_proxy.ports import Store
from mail_proxy.services.write_only import kept


@dataclass(frozen=True, slots=True)
class InstanceView:
    """The stored settings and whether the instance sends. The bounce password is
    in clear here: answers mask it."""

    name: str | None
    bounce: dict[str, Any] | None
    active: bool


class InstanceService:
    def __init__(self, store: Store, bounce_defaults: Mapping[str, Any]) -> None:
        """``bounce_defaults``: every bounce setting's default, so that the bounce
        settings stored are always complete, however few of them a save names."""
        self._store = store
        self._bounce_defaults = dict(bounce_defaults)

    async def get(self) -> InstanceView:
        stored = await self._store.instance.get()
        return InstanceView(
            stored.get("name"), _bounce(stored), await self._store.control.instance_active()
        )

    async def update(
        self, changes: Mapping[str, Any], bounce_fields: Mapping[str, Any]
    ) -> InstanceView:
        """``changes``: ``name`` and ``bounce`` (replaced whole) when given;
        ``bounce_fields``: single bounce settings applied over the bounce given, or
        else over the stored one."""
        await self._save(changes, bounce_fields)
        return await self.get()

    async def reload_bounce(self, bounce: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Replaces the bounce settings when given; returns them as stored."""
        if bounce is not None:
            await self._save({"bounce": bounce}, {})
        return _bounce(await self._store.instance.get())

    async def _save(self, changes: Mapping[str, Any], bounce_fields: Mapping[str, Any]) -> None:
        settings = dict(changes)
        stored = await self._store.instance.get()
        bounce = settings.get("bounce")
        if bounce_fields:
            base = bounce if bounce is not None else _bounce(stored) or {}
            bounce = self._bounce_defaults | dict(base) | dict(bounce_fields)
        if bounce is not None:
            password = kept(
                bounce.get("imap_password"), (_bounce(stored) or {}).get("imap_password")
            )
            settings["bounce"] = dict(bounce) | {"imap_password": password}
        if settings:
            await self._store.instance.update(settings)


def _bounce(stored: Mapping[str, Any]) -> dict[str, Any] | None:
    bounce = stored.get("bounce")
    return dict(bounce) if isinstance(bounce, dict) else None
