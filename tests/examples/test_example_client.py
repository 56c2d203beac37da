"""The example client against a real stand-in proxy: endpoints, states and failure paths."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mail_proxy.domain import signature

SYNC = "/email/mailproxy/mp_endpoint/proxy_sync"
EXAMPLE_DIR = Path(__file__).parents[2] / "examples" / "client"


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` every few milliseconds until true, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def send(client: Any, **params: Any) -> dict[str, Any]:
    response = await client.http.post("/send-test-email", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- configuration -------------------------------------------------------------------


def test_sample_config_documents_every_setting(ec: ModuleType) -> None:
    """The sample beside the script loads and sets the documented defaults."""
    config = ec.Config.load(EXAMPLE_DIR / "example_config.ini")
    assert config.mail_service_url == "http://localhost:8000"
    assert (config.host, config.port) == ("127.0.0.1", 8081)
    assert config.poll_interval == 60
    assert config.db_path == "example_client.db"
    assert config.account_id is None and config.signing_secret is None


def test_config_defaults_and_overrides(ec: ModuleType, tmp_path: Path) -> None:
    """Missing sections take defaults; present keys (with inline comments) override them."""
    path = tmp_path / "c.ini"
    path.write_text(
        "[mail_service]\nurl = http://proxy:9000/  # the proxy\napi_token = t\n"
        "[test]\nrecipient_email = a@b.c\naccount_id = acc\n[polling]\ninterval = 5\n"
    )
    config = ec.Config.load(path)
    assert config.mail_service_url == "http://proxy:9000"
    assert config.account_id == "acc" and config.poll_interval == 5
    assert (config.host, config.port, config.resubmit_submitted_after) == ("127.0.0.1", 8081, 1800)


def test_missing_config_file_is_an_error(ec: ModuleType, tmp_path: Path) -> None:
    """A mistyped --config path is reported instead of silently using defaults."""
    with pytest.raises(FileNotFoundError):
        ec.Config.load(tmp_path / "nope.ini")


# --- sending ---------------------------------------------------------------------------


async def test_send_persists_submits_and_triggers_run_now(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """One send: the proxy gets the seed's message fields and run-now; status is submitted."""
    async with start_client(make_config(proxy.url, account_id="acc-1", tenant_id="t1")) as client:
        result = await send(client, subject="Hello")
        assert result["status"] == "success"
        assert result["mail_service_response"] == {"ok": True, "queued": 1, "rejected": []}
        [message_id] = result["messages"]
        assert proxy.tokens == ["tok-123"]
        await wait_for(lambda: proxy.run_now_calls == 1)
        [sent] = proxy.messages
        assert sent == {
            "id": message_id,
            "to": "rcpt@example.org",
            "from": "app@example.org",
            "from_name": "Example App",
            "subject": "Hello",
            "body": sent["body"],
            "tenant_id": "t1",
            "account_id": "acc-1",
        }
        row = client.rows()[message_id]
        assert row["status"] == "submitted" and row["submitted_at"] is not None


async def test_message_is_committed_before_the_network_call(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """When the proxy receives a message, another connection already sees it as pending."""
    config = make_config(proxy.url)
    seen: list[str] = []

    async def look(messages: list[dict[str, Any]]) -> None:
        with sqlite3.connect(config.db_path) as db:
            for m in messages:
                seen.extend(
                    db.execute(
                        "SELECT status FROM outbound_emails WHERE id = ?", (m["id"],)
                    ).fetchone()
                )

    proxy.on_add = look
    async with start_client(config) as client:
        await send(client, count=3)
    assert seen == ["pending", "pending", "pending"]


@pytest.mark.parametrize("count", [0, 101, -1])
async def test_count_outside_1_to_100_is_422(
    count: int, proxy: Any, make_config: Any, start_client: Any
) -> None:
    """count must be 1..100; anything else is refused before anything is written."""
    async with start_client(make_config(proxy.url)) as client:
        response = await client.http.post("/send-test-email", params={"count": count})
        assert response.status_code == 422
        assert client.rows() == {} and proxy.add_calls == []


async def test_count_100_is_one_batch_with_distinct_ids(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """The upper bound is accepted and sent as one add-messages call of 100 unique ids."""
    async with start_client(make_config(proxy.url)) as client:
        result = await send(client, count=100)
        assert len(set(result["messages"])) == 100
        assert len(proxy.add_calls) == 1 and len(proxy.messages) == 100
        assert proxy.messages[0]["subject"].endswith("(1/100)")


async def test_proxy_down_keeps_message_pending(
    down_proxy: Any, make_config: Any, start_client: Any
) -> None:
    """Connection refused is not an error for the caller: the message waits locally."""
    async with start_client(make_config(down_proxy.url)) as client:
        result = await send(client)
        assert result["status"] == "queued_locally"
        assert "cannot reach mail service" in result["mail_service_error"]
        [row] = client.rows().values()
        assert row["status"] == "pending" and row["submitted_at"] is None


async def test_proxy_error_500_keeps_message_pending(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """A 500 from the proxy leaves the message pending and names the proxy's error."""
    proxy.answer_status = 500
    async with start_client(make_config(proxy.url)) as client:
        result = await send(client)
        assert result["mail_service_error"] == "mail service answered 500: boom"
        assert [r["status"] for r in client.rows().values()] == ["pending"]


async def test_run_now_failure_is_not_fatal(
    proxy: Any, make_config: Any, start_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """run-now is best effort: its 503 does not undo the accepted submission."""
    proxy.run_now_status = 503
    async with start_client(make_config(proxy.url)) as client:
        with caplog.at_level(logging.WARNING, logger="example_client"):
            result = await send(client)
            await wait_for(lambda: proxy.run_now_calls == 1)
            await client.core.settle()
        assert result["status"] == "success"
        assert [r["status"] for r in client.rows().values()] == ["submitted"]
        assert "run_now_failed_non_fatal" in caplog.text and "503" in caplog.text


async def test_response_does_not_wait_for_run_now(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """run-now is sent in the background: a proxy slow to answer it does not delay the user."""
    proxy.run_now_gate = asyncio.Event()
    async with start_client(make_config(proxy.url)) as client:
        result = await asyncio.wait_for(send(client), timeout=5)
        assert result["status"] == "success"
        await wait_for(lambda: proxy.run_now_calls == 1)
        proxy.run_now_gate.set()


async def test_rejections_fail_except_when_proxy_already_has_the_message(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """A rejected message fails with the reason; "already sent" means delivered."""
    async with start_client(make_config(proxy.url)) as client:
        result = await send(client, count=4)
        bad, sent, busy, ok = result["messages"]
        proxy.reject.update(
            {bad: "invalid address: to", sent: "id already sent", busy: "being sent"}
        )
        client.core.store._db.execute("UPDATE outbound_emails SET status = 'pending'")
        client.core.store._db.commit()
        await client.core.submit_due()
        rows = client.rows()
        assert rows[bad]["status"] == "failed"
        assert rows[bad]["error"] == "rejected: invalid address: to"
        assert rows[sent]["status"] == "delivered"
        assert rows[busy]["status"] == "submitted" and rows[ok]["status"] == "submitted"


async def test_report_arriving_before_the_submit_answer_is_kept(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """A fast proxy may report "sent" before add-messages returns: delivered must stick."""
    async with start_client(make_config(proxy.url)) as client:

        async def deliver_at_once(messages: list[dict[str, Any]]) -> None:
            report = {"delivery_report": [{"id": m["id"], "sent_ts": 1} for m in messages]}
            assert (await client.http.post(SYNC, json=report)).json()["ok"] is True

        proxy.on_add = deliver_at_once
        [message_id] = (await send(client))["messages"]
        assert client.rows()[message_id]["status"] == "delivered"


# --- reading state -------------------------------------------------------------------


async def test_messages_and_stats(proxy: Any, make_config: Any, start_client: Any) -> None:
    """/messages lists open messages by default (any state on request); /stats counts them."""
    async with start_client(make_config(proxy.url)) as client:
        ids = (await send(client, count=3))["messages"]
        report = {"reports": [{"id": ids[0], "status": "sent", "timestamp": 1761215435}]}
        await client.http.post("/delivery-report", json=report)
        listing = (await client.http.get("/messages")).json()
        assert listing["status"] == "success" and listing["count"] == 2
        first = listing["messages"][0]
        assert set(first) >= {"id", "recipient", "subject", "status", "created_at", "submitted_at"}
        assert first["status"] == "submitted" and first["created_at"].endswith("+00:00")
        delivered = (await client.http.get("/messages", params={"status": "delivered"})).json()
        assert delivered["messages"][0]["delivered_at"] == "2025-10-23T10:30:35+00:00"
        assert (await client.http.get("/messages", params={"status": "all"})).json()["count"] == 3
        assert (await client.http.get("/messages", params={"status": "bogus"})).status_code == 422
        stats = (await client.http.get("/stats")).json()
        assert stats == {
            "status": "success",
            "statistics": {"total": 3, "pending": 0, "submitted": 2, "delivered": 1, "failed": 0},
        }


# --- delivery reports ------------------------------------------------------------------


async def test_seed_report_format(proxy: Any, make_config: Any, start_client: Any) -> None:
    """{"reports": [{id, status: sent|error, ...}]} settles messages; old fields answered."""
    async with start_client(make_config(proxy.url)) as client:
        a, b = (await send(client, count=2))["messages"]
        body = {
            "reports": [
                {"id": a, "status": "sent", "timestamp": 1761215435},
                {"id": b, "status": "error", "error": "550 no such user", "timestamp": 1761215436},
            ]
        }
        answer = (await client.http.post(SYNC, json=body)).json()
        assert answer["ok"] is True and answer["status"] == "ok" and answer["processed"] == 2
        rows = client.rows()
        assert (rows[a]["status"], rows[a]["delivered_at"]) == ("delivered", 1761215435)
        assert (rows[b]["status"], rows[b]["error"]) == ("failed", "550 no such user")


async def test_proxy_report_format(proxy: Any, make_config: Any, start_client: Any) -> None:
    """{"delivery_report": [...]}: sent_ts delivers, error_ts fails, deferred_ts waits."""
    async with start_client(make_config(proxy.url)) as client:
        a, b, c, d = (await send(client, count=4))["messages"]
        body = {
            "delivery_report": [
                {"tenant_id": "t", "id": a, "pk": 1, "sent_ts": 1700000000},
                {"tenant_id": "t", "id": b, "pk": 2, "error_ts": 1700000001, "error": "550 5.1.1"},
                {
                    "tenant_id": "t",
                    "id": c,
                    "pk": 3,
                    "deferred_ts": 1700000600,
                    "deferred_reason": "rate limit",
                },
                {"tenant_id": "t", "id": d, "pk": 4, "sent_ts": 1700000002},
                {
                    "tenant_id": "t",
                    "id": d,
                    "pk": 4,
                    "bounce_ts": 1700000900,
                    "bounce_type": "hard",
                    "bounce_code": "5.1.1",
                    "bounce_reason": "user unknown",
                },
                {"tenant_id": "t", "id": "someone-else", "pk": 9, "sent_ts": 1700000003},
            ]
        }
        response = await client.http.post(SYNC, json=body)
        assert response.json() == {
            "ok": True,
            "queued": 0,
            "next_sync_after": None,
            "not_found": ["someone-else"],
            "status": "ok",
            "processed": 6,
        }
        rows = client.rows()
        assert (rows[a]["status"], rows[a]["delivered_at"]) == ("delivered", 1700000000)
        assert (rows[b]["status"], rows[b]["error"]) == ("failed", "550 5.1.1")
        assert rows[c]["status"] == "submitted"
        assert (rows[d]["status"], rows[d]["error"]) == ("failed", "bounced: user unknown")


async def test_sync_answers_pending_count_when_proxy_unreachable(
    down_proxy: Any, make_config: Any, start_client: Any
) -> None:
    """queued is the number of local pending messages the proxy has not been able to take."""
    async with start_client(make_config(down_proxy.url)) as client:
        await send(client, count=2)
        answer = (await client.http.post(SYNC, json={"delivery_report": []})).json()
        assert (answer["ok"], answer["queued"], answer["next_sync_after"]) == (True, 2, None)


async def test_sync_call_hands_pending_messages_over(
    down_proxy: Any, make_config: Any, start_client: Any
) -> None:
    """A sync call from a proxy that is back takes the pending messages, so queued drops to 0."""
    async with start_client(make_config(down_proxy.url)) as client:
        [message_id] = (await send(client))["messages"]
        await down_proxy.start()
        try:
            answer = (await client.http.post(SYNC, json={"delivery_report": []})).json()
        finally:
            await down_proxy.stop()
        assert answer["queued"] == 0
        assert [m["id"] for m in down_proxy.messages] == [message_id]
        assert client.rows()[message_id]["status"] == "submitted"


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"delivery_report": [{"id": "x", "sent_ts": "soon"}]}']
)
async def test_malformed_report_is_400_json(
    body: bytes, proxy: Any, make_config: Any, start_client: Any
) -> None:
    """A body that is not a report gets {"ok": false, "error"} and changes nothing."""
    async with start_client(make_config(proxy.url)) as client:
        response = await client.http.post(SYNC, content=body)
        assert response.status_code == 400
        assert response.json()["ok"] is False and "error" in response.json()


# --- authentication of the proxy's calls ----------------------------------------------


async def test_signature_is_verified_when_a_secret_is_configured(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """Signed by the proxy's own signer: accepted; missing, wrong or stale: 401."""
    secret = "whsec-example"
    async with start_client(make_config(proxy.url, signing_secret=secret)) as client:
        [message_id] = (await send(client))["messages"]
        body = json.dumps({"delivery_report": [{"id": message_id, "sent_ts": 1}]}).encode()
        now = int(time.time())

        async def post(header: str | None) -> Any:
            headers = {"Content-Type": "application/json"}
            if header is not None:
                headers[signature.HEADER] = header
            return await client.http.post(SYNC, content=body, headers=headers)

        for bad in (
            None,
            "garbage",
            signature.sign("other", now, body),
            signature.sign(secret, now - 301, body),
        ):
            response = await post(bad)
            assert response.status_code == 401 and response.json()["ok"] is False
        assert client.rows()[message_id]["status"] == "submitted"
        rotated = signature.sign(secret, now, body) + ",v1=" + "0" * 64
        assert (await post(rotated)).json()["ok"] is True
        assert client.rows()[message_id]["status"] == "delivered"


@pytest.mark.parametrize(
    "template",
    [
        "t=²,v1=" + "0" * 64,
        "t=" + "9" * 5000 + ",v1=" + "0" * 64,
        "t={now},v1=ü" + "0" * 63,
        "t={now},v1=zz",
        "t={now},v1=",
        "t=,v1=" + "0" * 64,
        "v1=" + "0" * 64,
    ],
    ids=["superscript-ts", "huge-ts", "non-ascii-hex", "bad-hex", "empty-hex", "empty-ts", "no-ts"],
)
def test_malformed_signature_is_a_problem_never_an_exception(ec: ModuleType, template: str) -> None:
    """A header that does not parse is named a problem (a 401), never raises (a 500)."""
    now = int(time.time())
    problem = ec.signature_problem(template.format(now=now), b"{}", "whsec", now, 300.0)
    assert isinstance(problem, str)


async def test_bearer_token_is_required_when_configured(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """With [proxy_sync] bearer_token set, calls without that token are refused."""
    async with start_client(make_config(proxy.url, sync_bearer_token="s3cret")) as client:
        body = {"delivery_report": []}
        refused = await client.http.post(SYNC, json=body, headers={"Authorization": "Bearer x"})
        assert refused.status_code == 401
        accepted = await client.http.post(
            SYNC, json=body, headers={"Authorization": "Bearer s3cret"}
        )
        assert accepted.json()["ok"] is True


# --- the polling safety net ----------------------------------------------------------


async def test_polling_delivers_what_was_written_while_proxy_was_down(
    down_proxy: Any, make_config: Any, start_client: Any
) -> None:
    """Proxy down at send time; once it listens, the polling loop submits and runs now."""
    async with start_client(make_config(down_proxy.url, poll_interval=0.05)) as client:
        [message_id] = (await send(client))["messages"]
        assert client.rows()[message_id]["status"] == "pending"
        await down_proxy.start()
        try:
            await wait_for(lambda: client.rows()[message_id]["status"] == "submitted")
            await wait_for(lambda: down_proxy.run_now_calls >= 1)
        finally:
            await down_proxy.stop()
        assert [m["id"] for m in down_proxy.messages] == [message_id]


async def test_polling_resubmits_only_long_unconfirmed_messages(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """Recently submitted messages are left alone; ones older than the threshold go again."""
    async with start_client(make_config(proxy.url, resubmit_submitted_after=600)) as client:
        old, _fresh = (await send(client, count=2))["messages"]
        db = client.core.store._db
        db.execute(
            "UPDATE outbound_emails SET submitted_at = submitted_at - 601 WHERE id = ?", (old,)
        )
        db.commit()
        assert await client.core.submit_due() == 1
        assert [m["id"] for m in proxy.add_calls[-1]["messages"]] == [old]
        assert client.rows()[old]["submitted_at"] >= int(time.time()) - 1
        assert await client.core.submit_due() == 0


async def test_settled_messages_are_never_resubmitted(
    proxy: Any, make_config: Any, start_client: Any
) -> None:
    """Delivered and failed messages stay out of the polling loop, however old."""
    async with start_client(make_config(proxy.url, resubmit_submitted_after=0)) as client:
        a, b = (await send(client, count=2))["messages"]
        report = {
            "reports": [
                {"id": a, "status": "sent", "timestamp": 1},
                {"id": b, "status": "error", "error": "x", "timestamp": 1},
            ]
        }
        await client.http.post("/delivery-report", json=report)
        calls = len(proxy.add_calls)
        assert await client.core.submit_due() == 0
        assert len(proxy.add_calls) == calls
