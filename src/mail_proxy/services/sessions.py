"""Dashboard sessions: opened by a login with the admin token or a tenant key.

The session id (256 random bits) lives only in the browser's cookie; the store
keeps its SHA-256, so a copied database opens no session. The CSRF token of a
session is an HMAC of its id, so it needs no storage and nobody without the cookie
can compute it (the synchroniser-token pattern, OWASP CSRF cheat sheet). A session
ends at its expiry, at logout, and as soon as the token it was opened with no
longer is the caller's token (rotated key, changed admin token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mail_proxy.ports import SessionRecord, Store
from mail_proxy.services.tenants import hash_api_key as digest


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """What the browser is given: the cookie value and the session's CSRF token."""

    session_id: str
    csrf_token: str
    expires_at: float


class SessionService:
    def __init__(self, store: Store, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock

    async def open(self, tenant_id: str | None, credential: str) -> OpenedSession:
        """A new session for a caller already identified with ``credential``."""
        now = self._clock()
        await self._store.sessions.purge(now)
        session_id = secrets.token_urlsafe(32)
        record = SessionRecord(
            digest(session_id), tenant_id, digest(credential), now, now + self._ttl
        )
        await self._store.sessions.add(record)
        return OpenedSession(session_id, csrf_token(session_id), record.expires_at)

    async def resolve(self, session_id: str) -> SessionRecord | None:
        """The live session with this id, or None (unknown or expired)."""
        record = await self._store.sessions.get(digest(session_id))
        if record is None:
            return None
        if record.expires_at <= self._clock():
            await self._store.sessions.remove(record.id_hash)
            return None
        return record

    async def close(self, session_id: str) -> None:
        await self._store.sessions.remove(digest(session_id))


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"mail-proxy-ui-csrf", hashlib.sha256).hexdigest()


def csrf_valid(session_id: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(csrf_token(session_id), token)
