"""Error answers: always JSON with ok false (and detail), fields on validation, no
trace, right codes; hostile input (deep nesting, odd digits, lone surrogates) is a
4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.integration.api.conftest import ADMIN_TOKEN, MakeTenant, message

from mail_proxy.api.deps import AnyCaller
from mail_proxy.api.middleware import MAX_JSON_DEPTH, too_deep
from mail_proxy.errors import StorageUnavailable
from mail_proxy.runtime import Runtime


def _error(text: str) -> dict[str, object]:
    return {"ok": False, "error": text, "detail": text}


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    """Framework errors (404, 405) use the same JSON shape."""
    missing = await client.get("/nope")
    assert missing.status_code == 404 and missing.json() == _error("Not Found")
    wrong = await client.get("/commands/add-messages")
    assert wrong.status_code == 405 and wrong.json()["ok"] is False


async def test_validation_errors_list_fields_without_values(client: httpx.AsyncClient) -> None:
    """422 names every failing field and never echoes the submitted values."""
    response = await client.post(
        "/account", json={"id": "a", "host": "h", "port": "not-a-port", "password": "pw-123"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["fields"] == [
        {"field": "body.port", "message": "Input should be a valid integer, unable to parse "
         "string as an integer"}
    ]  # fmt: skip
    assert body["detail"] == body["error"]
    assert "pw-123" not in response.text and "not-a-port" not in response.text
    query = await client.get("/messages", params={"limit": 0, "status": "lost"})
    assert {f["field"] for f in query.json()["fields"]} == {"query.limit", "query.status"}


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is a validation error, not a crash."""
    response = await client.post(
        "/commands/add-messages", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["ok"] is False


async def test_unexpected_exception_is_500_without_trace(app: FastAPI, runtime: Runtime) -> None:
    """An unhandled exception answers 500 'internal error' and leaks nothing; the
    authenticated call is in the command log, the anonymous one is not."""

    async def explode(caller: AnyCaller) -> None:
        raise RuntimeError("secret detail /srv/app.py line 12")

    async def locked() -> None:
        raise StorageUnavailable("Database is locked; retry later")

    app.add_api_route("/boom", explode, methods=["POST"])
    app.add_api_route("/locked", locked)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        boom = await http.post("/boom", json={}, headers={"X-API-Token": ADMIN_TOKEN})
        assert boom.status_code == 500
        assert boom.json() == _error("internal error")
        assert (await http.post("/boom", json={})).status_code == 401
        unavailable = await http.get("/locked")
        assert unavailable.status_code == 503
        assert unavailable.json() == _error("Database is locked; retry later")
    logged = await runtime.store.audit.entries()
    assert [(e.path, e.actor, e.status_code) for e in logged] == [("/boom", "admin", 500)]


def _nested(depth: int) -> bytes:
    return b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("path", ["/commands/add-messages", "/tenant", "/account"])
async def test_deep_nesting_is_a_json_400(client: httpx.AsyncClient, path: str) -> None:
    """JSON nested past MAX_JSON_DEPTH is refused before parsing, as JSON, and the
    proxy keeps answering."""
    response = await client.post(
        path, content=_nested(100_000), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == _error(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    assert (await client.get("/health")).status_code == 200


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (_nested(MAX_JSON_DEPTH - 1), False),  # the outer object makes MAX_JSON_DEPTH
        (_nested(MAX_JSON_DEPTH), True),
        (b'{"a": "' + b"[" * 100 + b'"}', False),  # brackets inside strings do not nest
        (b'{"a": "\\"' + b"[" * 100 + b'"}', False),  # nor after an escaped quote
        (b'[{"a": [1, {"b": []}]}, {}]', False),
        (b"[" * 40, False),  # unbalanced: left to the parser's own error
    ],
)
def test_too_deep(body: bytes, deep: bool) -> None:
    assert too_deep(body, MAX_JSON_DEPTH) is deep


async def test_nested_within_the_limit_is_judged_as_usual(client: httpx.AsyncClient) -> None:
    """Nesting at the limit reaches the route (which rejects the odd message)."""
    response = await client.post(
        "/commands/add-messages",
        content=b'{"messages": [' + b"[" * 30 + b"]" * 30 + b"]}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["rejected"][0]["reason"] == "message must be a JSON object"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/messages", {"params": {"limit": "²"}}),
        ("GET", "/messages", {"params": {"offset": "١٢"}}),
        ("GET", "/command-log", {"params": {"since_ts": "²"}}),
        ("POST", "/commands/add-messages", {"json": {"messages": [], "default_priority": "²"}}),
        ("POST", "/commands/add-messages", {"json": {"messages": [], "default_priority": "٣"}}),
        ("POST", "/account", {"json": {"id": "a", "tenant_id": "t", "host": "h", "port": "²"}}),
    ],
)
async def test_digits_int_cannot_read_are_4xx(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, object]
) -> None:
    """ "²" and other non-ASCII digits pass str.isdigit() but not int(): a 4xx, not 500."""
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["ok"] is False


async def test_odd_digits_as_message_priority_reject_the_message(
    client: httpx.AsyncClient, make_tenant: MakeTenant
) -> None:
    await make_tenant("acme")
    await client.post(
        "/account",
        json={"id": "main", "tenant_id": "acme", "host": "smtp.example.com",
              "default_from": "a@example.com"},
    )  # fmt: skip
    response = await client.post(
        "/commands/add-messages",
        json={"messages": [message("m1", tenant_id="acme", priority="²")]},
    )
    assert response.status_code == 400
    assert response.json()["rejected"][0]["reason"].startswith("invalid priority")


@pytest.mark.parametrize(
    "url",
    [
        "/messages?tenant_id=%ED%A0%80",
        "/messages/%ED%A0%80/events?tenant_id=acme",
        "/tenant/%ED%A0%80",
        "/command-log?tenant_id=%ED%A0%80",
    ],
)
async def test_undecodable_bytes_in_the_url_are_not_a_500(
    client: httpx.AsyncClient, url: str
) -> None:
    """Percent-encoded bytes that are not UTF-8 reach no database as lone surrogates."""
    response = await client.get(url)
    assert response.status_code < 500, response.text
