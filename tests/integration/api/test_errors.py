"""Error answers: always JSON with ok false, fields on validation, no trace, right codes."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from mail_proxy.errors import StorageUnavailable
from mail_proxy.runtime import Runtime


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    """Framework errors (404, 405) use the same JSON shape."""
    missing = await client.get("/nope")
    assert missing.status_code == 404 and missing.json() == {"ok": False, "error": "Not Found"}
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
    """An unhandled exception answers 500 'internal error' and leaks nothing."""

    async def explode() -> None:
        raise RuntimeError("secret detail /srv/app.py line 12")

    async def locked() -> None:
        raise StorageUnavailable("Database is locked; retry later")

    app.add_api_route("/boom", explode, methods=["POST"])
    app.add_api_route("/locked", locked)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        boom = await http.post("/boom", json={})
        assert boom.status_code == 500
        assert boom.json() == {"ok": False, "error": "internal error"}
        unavailable = await http.get("/locked")
        assert unavailable.status_code == 503
        assert unavailable.json() == {"ok": False, "error": "Database is locked; retry later"}
    logged = await runtime.store.command_log()
    assert [(e.path, e.status_code) for e in logged] == [("/boom", 500)]
