"""HttpSyncClient against a real local application: auth, signature, answers, failures."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator

import pytest

from mail_proxy.client import verify_signature
from mail_proxy.domain.models import AuthMethod, ClientAuth
from mail_proxy.settings import Settings
from mail_proxy.sync.client import FailureKind, SyncAnswer, SyncFailure, SyncTarget
from mail_proxy.sync.http import HttpSyncClient

from .conftest import Answer, Application

BODY = b'{"delivery_report":[]}'


@pytest.fixture
async def client() -> AsyncIterator[HttpSyncClient]:
    """A client with a short timeout so the hang case ends fast; loopback permitted."""
    c = HttpSyncClient(Settings(sync_timeout=0.3, allow_private_targets=True))
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
    header = call.headers["x-mail-proxy-signature"]
    assert verify_signature(call.body, header, "s3cret", now=now)
    assert not verify_signature(call.body, header, "other", now=now)


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
        (Answer(body={"ok": "true"}), FailureKind.NOT_OK),
        (Answer(body={"ok": None}), FailureKind.NOT_OK),
        (Answer(hang=True), FailureKind.TIMEOUT),
    ],
    ids=["500", "ok-false", "ok-string", "ok-null", "hang"],
)
async def test_error_status_timeout_or_explicit_not_ok_is_a_failure(
    application: Application, client: HttpSyncClient, answer: Answer, kind: FailureKind
) -> None:
    """A non-2xx, a timeout, or an ``ok`` field other than true: a typed failure."""
    application.script("/sync", answer)
    result = await client.send(SyncTarget(application.url("/sync")), BODY, time.time())
    assert isinstance(result, SyncFailure)
    assert result.kind is kind


@pytest.mark.parametrize(
    ("answer", "queued"),
    [
        (Answer(body={"status": "ok", "processed": 0}), 0),
        (Answer(body={"queued": 2}), 2),
        (Answer(raw=b"<html>ok</html>"), 0),
        (Answer(raw=b""), 0),
        (Answer(body=[{"ok": False}]), 0),
    ],
    ids=["reference-example-client", "queued-only", "not-json", "empty", "not-object"],
)
async def test_2xx_without_ok_field_acknowledges_flagged_implied(
    application: Application, client: HttpSyncClient, answer: Answer, queued: int
) -> None:
    """Applications written for the reference answer {"status": "ok"}: acknowledged."""
    application.script("/sync", answer)
    result = await client.send(SyncTarget(application.url("/sync")), BODY, time.time())
    assert isinstance(result, SyncAnswer)
    assert result.implied is True
    assert result.queued == queued


async def test_explicit_ok_true_is_not_flagged_implied(
    application: Application, client: HttpSyncClient
) -> None:
    result = await client.send(SyncTarget(application.url("/sync")), BODY, time.time())
    assert isinstance(result, SyncAnswer) and result.implied is False


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_target_is_refused_without_a_call(
    application: Application, host: str
) -> None:
    """An untrusted target on loopback is refused by the policy; nothing reaches it."""
    strict = HttpSyncClient(Settings(sync_timeout=2.0))
    try:
        url = f"http://{host}:{application.port}/sync"
        result = await strict.send(SyncTarget(url), BODY, time.time())
    finally:
        await strict.aclose()
    assert isinstance(result, SyncFailure)
    assert result.kind is FailureKind.TARGET_REFUSED
    assert "private or local" in result.detail
    assert application.calls == []


@pytest.mark.parametrize(
    ("settings", "trusted"),
    [
        ({}, True),
        ({"allow_private_targets": True}, False),
        ({"private_targets_allowlist": ["127.0.0.0/8", "::1"]}, False),
    ],
    ids=["trusted-target", "allow-private", "allowlist"],
)
async def test_permitted_private_target_is_called_by_name_with_its_host_header(
    application: Application, settings: dict[str, object], trusted: bool
) -> None:
    """A trusted target (or the operator's permission) may use loopback: the call is
    made, and carries the name in ``Host`` also when it was sent to the address the
    allowlist checked."""
    permitted = HttpSyncClient(Settings(sync_timeout=2.0, **settings))
    try:
        url = f"http://localhost:{application.port}/sync"
        result = await permitted.send(SyncTarget(url, trusted=trusted), BODY, time.time())
    finally:
        await permitted.aclose()
    assert isinstance(result, SyncAnswer)
    [call] = application.calls
    assert call.headers["host"] == f"localhost:{application.port}"


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
