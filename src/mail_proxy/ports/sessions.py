"""The port of dashboard sessions: who is logged in to ``/ui``, by a digest of the
session id, so a copied database opens no session."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One open session. ``tenant_id`` None is the admin. ``credential_hash`` is the
    SHA-256 of the token it was opened with: rotating that token ends the session."""

    id_hash: str
    tenant_id: str | None
    credential_hash: str
    created_at: float
    expires_at: float


class Sessions(ABC):
    @abstractmethod
    async def add(self, session: SessionRecord) -> None: ...

    @abstractmethod
    async def get(self, id_hash: str) -> SessionRecord | None: ...

    @abstractmethod
    async def remove(self, id_hash: str) -> None: ...

    @abstractmethod
    async def purge(self, now: float) -> int:
        """Remove the sessions expired at ``now``; how many."""
