"""The SDK's behaviour without I/O: retries, back-off, errors (plans driven by hand)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mail_proxy.client import (
    AuthenticationError,
    Conflict,
    MailProxyError,
    NotFound,
    RequestTimeout,
    ServerUnavailable,
    ValidationError,
)
from mail_proxy.client.calls import Call, RetryPolicy, Send, Sleep, attempts, model, text
from mail_proxy.client.errors import MAX_ERROR_CHARS, error_for
from mail_proxy.schemas import OkResponse

REQUEST = httpx.Request("GET", "http://proxy.test/status")


def _answer(status: int, body: Any = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.Response(status, content=content, request=REQUEST)
    return httpx.Response(status, json=body, request=REQUEST)


def _drive(call: Call[Any], outcomes: list[Any], policy: RetryPolicy) -> tuple[list[Any], Any]:
    """Feed ``outcomes`` to the Send steps of ``attempts``; the steps seen and the result."""
    steps = attempts(call, policy)
    seen: list[Any] = []
    feed: Any = None
    try:
        while True:
            step = steps.send(feed)
            seen.append(step)
            feed = outcomes.pop(0) if isinstance(step, Send) else None
    except StopIteration as stop:
        return seen, stop.value


READ = Call("GET", "/status", text, repeatable=True)
WRITE = Call("POST", "/tenant", text)
DROPPED = httpx.RemoteProtocolError("Server disconnected without sending a response.")
REFUSED = httpx.ConnectError("Connection refused")


def test_a_dropped_connection_is_retried_for_a_repeatable_call_with_growing_delays() -> None:
    ok = _answer(200, {"ok": True})
    seen, result = _drive(READ, [DROPPED, DROPPED, ok], RetryPolicy(retries=3, backoff=0.5))
    assert [s.seconds for s in seen if isinstance(s, Sleep)] == [0.5, 1.0]
    assert result is ok


def test_a_dropped_connection_is_not_retried_for_a_call_that_must_not_repeat() -> None:
    with pytest.raises(ServerUnavailable, match="RemoteProtocolError"):
        _drive(WRITE, [DROPPED], RetryPolicy(retries=3))


def test_a_refused_connection_is_retried_for_every_call_then_reported() -> None:
    """Nothing reached the server, so even a call that must not repeat is tried again."""
    with pytest.raises(ServerUnavailable, match="ConnectError") as caught:
        _drive(WRITE, [REFUSED, REFUSED, REFUSED], RetryPolicy(retries=2, backoff=0.01))
    assert caught.value.status_code is None


def test_503_is_retried_only_when_repeatable() -> None:
    busy, ok = _answer(503, {"ok": False, "error": "db down"}), _answer(200, {"ok": True})
    assert _drive(READ, [busy, ok], RetryPolicy())[1] is ok
    assert _drive(WRITE, [busy, ok], RetryPolicy())[1] is busy


def test_a_read_timeout_is_a_request_timeout() -> None:
    with pytest.raises(RequestTimeout):
        _drive(WRITE, [httpx.ReadTimeout("timed out")], RetryPolicy())


def test_delays_are_capped() -> None:
    assert RetryPolicy(backoff=1.0).delay(10) == 8.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFound),
        (409, Conflict),
        (413, ValidationError),
        (422, ValidationError),
        (503, ServerUnavailable),
        (500, MailProxyError),
    ],
)
def test_failure_answers_become_typed_errors_with_the_servers_sentence(
    status: int, kind: type[MailProxyError]
) -> None:
    error = error_for(_answer(status, {"ok": False, "error": "Say why", "detail": "Say why"}))
    assert type(error) is kind
    assert (error.message, error.status_code) == ("Say why", status)


def test_validation_errors_carry_fields_and_rejected_messages() -> None:
    body = {
        "ok": False,
        "error": "No message queued",
        "fields": [{"field": "query.limit", "message": "too small"}],
        "rejected": [{"id": "m1", "index": 0, "reason": "missing field: to"}, "junk"],
    }
    error = error_for(_answer(400, body))
    assert isinstance(error, ValidationError)
    assert [f.field for f in error.fields] == ["query.limit"]
    assert [(r.id, r.reason) for r in error.rejected] == [("m1", "missing field: to")]


def test_a_non_json_failure_is_reported_cut_to_a_bounded_length() -> None:
    error = error_for(_answer(502, content=b"<html>" + b"x" * 5000))
    assert error.message.startswith("HTTP 502: <html>")
    assert len(error.message) <= MAX_ERROR_CHARS + 1


def test_an_answer_of_another_shape_is_a_mail_proxy_error() -> None:
    with pytest.raises(MailProxyError, match="not a OkResponse"):
        model(OkResponse)(_answer(200, {"ok": "maybe"}))


def test_unset_query_parameters_are_left_out_and_booleans_spelled_for_the_api() -> None:
    call = Call("GET", "/messages", text, {"tenant_id": None, "active_only": True, "limit": 5})
    assert call.request_args()["params"] == {"active_only": "true", "limit": 5}
