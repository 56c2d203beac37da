"""HttpSyncClient against a real local application: auth, signature, answers, failures."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator

import pytest

from mail_proxy.callbacks.base import FailureKind, SyncAnswer, SyncFailure, SyncTarget
from mail_proxy.callbacks.http import HttpSyncClient
from mail_proxy.domain import signature
from mail_proxy.domain.models import AuthMethod, ClientAuth
from mail_proxy.settings import Settings

from .conftest import Answer, Application

BODY = b'{"delivery_report":[]}'


@pytest.fixture
async def client() -> AsyncIterator[HttpSyncClient]:
    """A client with a short timeout so the hang case ends fast."""
    c = HttpSyncClient(Settings(sync_timeout=0.3))
    yield c
    await c.aclose()


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (ClientAuth(AuthMethod.BEARER, token="tok-123"), "Bearer tok-123"),
        (
            ClientAuth(AuthMethod.BASIC, user="app", password="pässword"),
            "Basic " + base64.b64encode("app:pässword".encode()).decode(),
        ),
        (ClientAuth(), None),
    ],
    ids=["bearer", "basic", "none"],
)
async def test_auth_header(
    application: Application, client: HttpSyncClient, auth: ClientAuth, expected: str | None
) -> None:
    """Bearer and basic credentials are sent as Authorization; none sends nothing."""
    result = await client.send(SyncTarget(application.url("/sync"), auth), BODY, time.time())
    assert isinstance(result, SyncAnswer)
    assert application.calls[0].headers.get("authorization") == expected


async def test_signed_call_verifies_with_the_secret(
    application: Application, client: HttpSyncClient
) -> None:
    """The signature header verifies against the raw body the application received."""
    now = time.time()
    target = SyncTarget(application.url("/sync"), signing_secret="s3cret")
    await client.send(target, BODY, now)
    call = application.calls[0]
    assert call.body == BODY
    assert call.headers["content-type"] == "application/json"
    assert signature.verify("s3cret", call.headers["x-mail-proxy-signature"], call.body, now)
    assert not signature.verify("other", call.headers["x-mail-proxy-signature"], call.body, now)


async def test_no_secret_means_no_signature(
    application: Application, client: HttpSyncClient
) -> None:
    """Without a secret (global URL not configured to sign) no header is sent."""
    await client.send(SyncTarget(application.url("/sync")), BODY, time.time())
    assert "x-mail-proxy-signature" not in application.calls[0].headers


async def test_answer_fields_are_read(application: Application, client: HttpSyncClient) -> None:
    """queued, next_sync_after and the error/not_found id lists come back parsed."""
    application.script(
        "/sync",
        Answer(
            body={
                "ok": True,
                "queued": 3,
                "next_sync_after": 1_900_000_000,
                "error": ["m1"],
                "not_found": ["m2", 3],
            }
        ),
    )
    result = await client.send(SyncTarget(application.url("/sync")), BODY, time.time())
    assert result == SyncAnswer(200, 3, 1_900_000_000.0, ["m1"], ["m2", "3"])


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (Answer(status=500, body={"ok": True}), FailureKind.HTTP_STATUS),
        (Answer(body={"ok": False, "error": "db down"}), FailureKind.NOT_OK),
        (Answer(body={"queued": 1}), FailureKind.NOT_OK),
        (Answer(body={"ok": "true"}), FailureKind.NOT_OK),
        (Answer(raw=b"<html>ok</html>"), FailureKind.INVALID_ANSWER),
        (Answer(body=[{"ok": True}]), FailureKind.INVALID_ANSWER),
        (Answer(hang=True), FailureKind.TIMEOUT),
    ],
    ids=["500", "ok-false", "ok-missing", "ok-string", "not-json", "not-object", "hang"],
)
async def test_anything_but_ok_true_is_a_failure(
    application: Application, client: HttpSyncClient, answer: Answer, kind: FailureKind
) -> None:
    """Only a 2xx JSON object with ok: true acknowledges; the rest is a typed failure."""
    application.script("/sync", answer)
    result = await client.send(SyncTarget(application.url("/sync")), BODY, time.time())
    assert isinstance(result, SyncFailure)
    assert result.kind is kind


async def test_connection_refused_is_a_failure(client: HttpSyncClient) -> None:
    """A closed port gives a connection failure, not an exception."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await client.send(SyncTarget(f"http://127.0.0.1:{port}/sync"), BODY, time.time())
    assert isinstance(result, SyncFailure)
    assert result.kind is FailureKind.CONNECTION


async def test_connections_are_reused(application: Application, client: HttpSyncClient) -> None:
    """Consecutive calls to one application travel over the same TCP connection."""
    target = SyncTarget(application.url("/sync"))
    for _ in range(3):
        assert isinstance(await client.send(target, BODY, time.time()), SyncAnswer)
    assert len({c.client_port for c in application.calls}) == 1


@pytest.mark.parametrize("url", ["http://[::1/sync", "ftp://127.0.0.1/sync"])
async def test_unusable_url_is_a_failure(client: HttpSyncClient, url: str) -> None:
    """A malformed or non-HTTP sync URL is reported as such instead of raising."""
    result = await client.send(SyncTarget(url), BODY, time.time())
    assert isinstance(result, SyncFailure)
    assert result.kind is FailureKind.INVALID_URL
