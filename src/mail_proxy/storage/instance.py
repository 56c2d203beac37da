"""Instance-wide settings changed at run time through the API (the bounce mailbox)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mail_proxy.ports import InstanceSettings
from mail_proxy.storage.database import Database
from mail_proxy.storage.tables import instance_settings

SETTING = instance_settings.c


class SqlInstanceSettings(InstanceSettings):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self) -> dict[str, Any]:
        return await self._db.read(self._settings, "get_instance_settings")

    async def _settings(self, conn: AsyncConnection) -> dict[str, Any]:
        rows = await conn.execute(sa.select(SETTING.key, SETTING.value).order_by(SETTING.key))
        return {key: json.loads(self._db.cipher.open(value) or "null") for key, value in rows}

    async def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Keys given are set; a key given as ``None`` is removed.

        Values are stored encrypted whole: they hold the bounce mailbox password, and
        sealing every value spares a list of which keys are secret.
        """
        kept = [
            {"key": k, "value": self._db.cipher.seal(json.dumps(v))}
            for k, v in changes.items()
            if v is not None
        ]
        dropped = [k for k, v in changes.items() if v is None]
        upsert = self._db.insert(instance_settings)
        upsert = upsert.on_conflict_do_update(
            index_elements=[SETTING.key], set_={"value": upsert.excluded.value}
        )

        async def op(conn: AsyncConnection) -> dict[str, Any]:
            if kept:
                await conn.execute(upsert, kept)
            if dropped:
                unset = self._db.in_(SETTING.key, dropped)
                await conn.execute(sa.delete(instance_settings).where(unset))
            return await self._settings(conn)

        return await self._db.write(op, "update_instance_settings")
