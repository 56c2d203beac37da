"""The dashboard's pages over ASGI, on SQLite and PostgreSQL: login and sessions,
CSRF, tenant isolation by URL, escaping, and each page rendering."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mail_proxy.domain.returned_mail import read_returned
from mail_proxy.domain.suppression import SoftBouncePolicy
from mail_proxy.ports.returned_mail import BounceRules
from mail_proxy.returned_samples import postfix_dsn
from mail_proxy.runtime import Runtime
from mail_proxy.services.tenants import hash_api_key
from mail_proxy.ui.session import SESSION_COOKIE

from .conftest import ADMIN, TenantKey, UiClient, client_of, csrf

XSS = "<script>alert(1)</script>"


async def _queue(api: httpx.AsyncClient, tenant: str, *messages: dict[str, Any]) -> None:
    account = {"id": "main", "tenant_id": tenant, "host": "127.0.0.1", "port": 2525}
    assert (await api.post("/account", json=account)).status_code == 200
    body = {"messages": [{"tenant_id": tenant, "from": "a@example.com", **m} for m in messages]}
    answer = await api.post("/commands/add-messages", json=body)
    assert answer.json()["queued"] == len(messages), answer.text


async def test_root_sends_browsers_to_the_dashboard_and_json_clients_get_json(app: Any) -> None:
    async with client_of(app, Accept="text/html") as browser:
        assert (await browser.get("/")).headers["location"] == "/ui"
        login = await browser.get("/ui")
        assert login.status_code == 303 and login.headers["location"].startswith("/ui/login")
    async with client_of(app) as plain:
        answer = await plain.get("/")
        assert answer.json()["dashboard"] == "/ui"


async def test_login_sets_a_strict_http_only_cookie_and_wrong_tokens_are_refused(
    app: Any,
) -> None:
    async with client_of(app) as browser:
        refused = await browser.post("/ui/login", data={"token": "wrong"})
        assert refused.status_code == 401 and "not the admin token" in refused.text
        assert "wrong" not in refused.text
        answer = await browser.post("/ui/login", data={"token": ADMIN, "next": "//evil.example"})
        assert answer.headers["location"] == "/ui"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        assert "secure" not in cookie  # plain HTTP here; HTTPS adds it
        assert ADMIN not in answer.headers["set-cookie"]


async def test_pages_render_for_the_admin(
    ui: UiClient, api: httpx.AsyncClient, tenant_key: TenantKey
) -> None:
    await tenant_key("acme")
    await _queue(api, "acme", {"id": "m1", "to": "ann@example.com", "subject": "Invoice"})
    admin = await ui(ADMIN)
    for path, text in [
        ("/ui", "Messages per minute"),
        ("/ui/overview/live", "Client sync health"),
        ("/ui/messages", "Invoice"),
        ("/ui/messages?status=pending&tenant=acme", "m1"),
        ("/ui/message?tenant=acme&id=m1", "Timeline"),
        ("/ui/tenants", "acme"),
        ("/ui/tenants/acme", "SMTP accounts"),
        ("/ui/instance", "Command log"),
    ]:
        page = await admin.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert text in page.text, path
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_messages_search_filters_and_keyset_pages(
    ui: UiClient, api: httpx.AsyncClient, tenant_key: TenantKey
) -> None:
    await tenant_key("acme")
    many = [{"id": f"m{i:03d}", "to": f"u{i}@example.com", "subject": f"S{i}"} for i in range(60)]
    many[7] |= {"subject": "Café order", "batch_code": "promo"}
    await _queue(api, "acme", *many)
    admin = await ui(ADMIN)
    first = (await admin.get("/ui/messages")).text
    assert "m059" in first and "m009" not in first and "Older" in first
    older = (await admin.get("/ui/messages?before=" + _cursor(first))).text
    assert "m009" in older and "m059" not in older
    assert "m007" in (await admin.get("/ui/messages?q=café")).text
    assert "m007" in (await admin.get("/ui/messages?batch=promo")).text
    assert "m042" in (await admin.get("/ui/messages?id=m042")).text
    empty = (await admin.get("/ui/messages?since=2001-01-01T00:00&until=2001-01-02T00:00")).text
    assert "No message matches" in empty
    bad = await admin.get("/ui/messages?status=lost")
    assert bad.status_code == 400 and "Unknown status" in bad.text


def _cursor(html: str) -> str:
    return html.split("before=", 1)[1].split('"', 1)[0].split("&", 1)[0]


async def test_a_subject_of_script_is_shown_as_text_and_the_body_is_sandboxed(
    ui: UiClient, api: httpx.AsyncClient, tenant_key: TenantKey
) -> None:
    await tenant_key("acme")
    html_body = f'<p>Hi</p>{XSS}<img src="https://tracker.example/p.gif">'
    await _queue(api, "acme", {"id": "x1", "to": "b@example.com", "subject": XSS,
                              "body": html_body, "html": True})  # fmt: skip
    admin = await ui(ADMIN)
    for path in ("/ui/messages", "/ui/message?tenant=acme&id=x1"):
        text = (await admin.get(path)).text
        assert XSS not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = (await admin.get("/ui/message?tenant=acme&id=x1")).text
    assert '<iframe class="body" sandbox ' in page
    body = await admin.get("/ui/message/body?tenant=acme&id=x1")
    policy = body.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src data: cid:" in policy
    assert "script-src" not in policy and "sandbox" in policy


async def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
    ui: UiClient, tenant_key: TenantKey, runtime: Runtime
) -> None:
    await tenant_key("acme")
    admin = await ui(ADMIN)
    token = csrf((await admin.get("/ui/tenants/acme")).text)
    missing = await admin.post("/ui/tenants/acme/suspend", data={})
    assert missing.status_code == 403 and "reload" in missing.text
    forged = await admin.post("/ui/tenants/acme/suspend", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    elsewhere = await admin.post(
        "/ui/tenants/acme/suspend", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert await runtime.store.control.suspensions("acme") == []
    done = await admin.post("/ui/tenants/acme/suspend", data={"csrf": token})
    assert done.status_code == 303
    assert await runtime.store.control.suspensions("acme") == ["*"]
    logged = await runtime.store.audit.entries()
    assert any(e.path == "/ui/tenants/acme/suspend" and e.actor == "admin" for e in logged)


async def test_a_tenant_sees_only_its_own_data(
    ui: UiClient, api: httpx.AsyncClient, tenant_key: TenantKey
) -> None:
    acme = await tenant_key("acme")
    await tenant_key("globex")
    await _queue(api, "acme", {"id": "a1", "to": "x@example.com", "subject": "Acme mail"})
    await _queue(api, "globex", {"id": "g1", "to": "y@example.com", "subject": "Globex mail"})
    tenant = await ui(acme)
    listing = (await tenant.get("/ui/messages")).text
    assert "Acme mail" in listing and "Globex mail" not in listing
    assert "Globex mail" not in (await tenant.get("/ui/messages?q=Globex")).text
    for path in (
        "/ui/messages?tenant=globex",
        "/ui/message?tenant=globex&id=g1",
        "/ui/message/body?tenant=globex&id=g1",
        "/ui/tenants/globex",
        "/ui/instance",
    ):
        answer = await tenant.get(path)
        assert answer.status_code in (401, 403), path
        assert "Globex mail" not in answer.text
    token = csrf((await tenant.get("/ui/tenants/acme")).text)
    refused = await tenant.post("/ui/tenants/globex/suspend", data={"csrf": token})
    assert refused.status_code in (401, 403)
    assert (await tenant.get("/ui/tenants")).headers["location"] == "/ui/tenants/acme"


async def test_rotating_a_key_shows_it_once_and_ends_the_sessions_of_the_old_one(
    ui: UiClient, tenant_key: TenantKey
) -> None:
    acme = await tenant_key("acme")
    tenant = await ui(acme)
    token = csrf((await tenant.get("/ui/tenants/acme")).text)
    answer = await tenant.post("/ui/tenants/acme/rotate-key", data={"csrf": token})
    assert answer.status_code == 200 and "shown only this once" in answer.text
    new_key = answer.text.split('<code class="secret">', 1)[1].split("<", 1)[0]
    assert len(new_key) >= 40
    after = await tenant.get("/ui/tenants/acme")
    assert after.status_code == 303  # the old key's session is over
    again = await ui(new_key)
    page = (await again.get("/ui/tenants/acme")).text
    assert new_key not in page and "Signing secret: set" in page


async def test_logout_and_expiry_end_the_session(ui: UiClient, runtime: Runtime, app: Any) -> None:
    admin = await ui(ADMIN)
    session_id = admin.cookies[SESSION_COOKIE]
    token = csrf((await admin.get("/ui")).text)
    assert (await admin.post("/ui/logout", data={"csrf": token})).status_code == 303
    async with client_of(app) as replay:
        replay.cookies.set(SESSION_COOKIE, session_id, path="/ui")
        assert (await replay.get("/ui")).status_code == 303
    short = runtime.settings.model_copy(update={"ui_session_ttl": 60})
    runtime.settings = short
    admin = await ui(ADMIN)
    assert (await admin.get("/ui")).status_code == 200
    record = await runtime.store.sessions.get(hash_api_key(admin.cookies[SESSION_COOKIE]))
    assert record is not None and record.expires_at - record.created_at == 60


async def test_actions_retry_delete_create_tenant_and_accounts(
    ui: UiClient, api: httpx.AsyncClient, tenant_key: TenantKey, runtime: Runtime
) -> None:
    await tenant_key("acme")
    await _queue(api, "acme", {"id": "r1", "to": "x@example.com", "subject": "Later",
                              "deferred_ts": 4_000_000_000})  # fmt: skip
    admin = await ui(ADMIN)
    token = csrf((await admin.get("/ui/message?tenant=acme&id=r1")).text)
    retried = await admin.post(
        "/ui/message/retry", data={"csrf": token, "tenant": "acme", "id": "r1"}
    )
    assert retried.status_code == 303 and "notice=retried" in retried.headers["location"]
    record = await runtime.store.messages.get("acme", "r1")
    assert record is not None and record.deferred_ts is not None and record.deferred_ts < 4e9
    deleted = await admin.post(
        "/ui/message/delete", data={"csrf": token, "tenant": "acme", "id": "r1"}
    )
    assert deleted.status_code == 303 and await runtime.store.messages.get("acme", "r1") is None

    created = await admin.post("/ui/tenants", data={"csrf": token, "id": "initech", "name": XSS})
    assert created.status_code == 200 and "API key" in created.text and XSS not in created.text
    bad = await admin.post("/ui/tenants", data={"csrf": token, "id": "bad id!"})
    assert bad.status_code == 400 and "id" in bad.text
    saved = await admin.post(
        "/ui/tenants/initech/accounts",
        data={"csrf": token, "id": "smtp1", "host": "127.0.0.1", "port": "1", "user": "u",
              "password": "hunter2-secret", "limit_per_minute": "10"},
    )  # fmt: skip
    assert saved.status_code == 303
    page = (await admin.get("/ui/tenants/initech")).text
    assert "smtp1" in page and "hunter2-secret" not in page
    tested = await admin.post("/ui/tenants/initech/accounts/smtp1/test", data={"csrf": token})
    assert tested.status_code == 200 and "connection failed" in tested.text
    nul = await admin.post("/ui/tenants/initech/edit", data={"csrf": token, "name": "a\x00b"})
    assert nul.status_code == 400


@pytest.mark.parametrize("path", ["/ui/mailbox", "/ui/mailbox/body?message_id=x"])
async def test_the_dev_mailbox_needs_the_dev_sink(ui: UiClient, path: str) -> None:
    admin = await ui(ADMIN)
    answer = await admin.get(path)
    assert answer.status_code == 404 and "--dev-sink" in answer.text


async def test_the_cookie_is_secure_over_https_and_an_inactive_tenant_only_reads(
    app: Any, api: httpx.AsyncClient, tenant_key: TenantKey
) -> None:
    acme = await tenant_key("acme")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="https://proxy.test") as browser:
        answer = await browser.post("/ui/login", data={"token": acme})
        assert "secure" in answer.headers["set-cookie"].lower()
        token = csrf((await browser.get("/ui/tenants/acme")).text)
        assert (await api.put("/tenant/acme", json={"active": False})).status_code == 200
        assert (await browser.get("/ui/tenants/acme")).status_code == 200
        refused = await browser.post("/ui/tenants/acme/suspend", data={"csrf": token})
        assert refused.status_code == 403 and "inactive" in refused.text


async def test_a_recipient_is_suppressed_from_its_message_page_and_bounces_show_on_the_overview(
    ui: UiClient, api: httpx.AsyncClient, tenant_key: TenantKey, runtime: Runtime
) -> None:
    acme = await tenant_key("acme")
    await _queue(api, "acme", {"id": "s1", "to": ["Bob <Bob@Example.com>", "c@example.com"],
                              "subject": "Hi", "deferred_ts": 4_000_000_000})  # fmt: skip
    tenant = await ui(acme)
    page = (await tenant.get("/ui/message?tenant=acme&id=s1")).text
    assert "<option>bob@example.com</option>" in page and "<option>c@example.com</option>" in page
    form = {"csrf": csrf(page), "tenant": "acme", "id": "s1", "address": "bob@example.com"}
    done = await tenant.post("/ui/message/suppress", data=form)
    assert done.status_code == 303 and "notice=suppressed" in done.headers["location"]
    again = await tenant.post("/ui/message/suppress", data=form)
    assert "notice=listed" in again.headers["location"]
    bad = await tenant.post("/ui/message/suppress", data={**form, "address": "not an address"})
    assert bad.status_code == 400 and "address" in bad.text
    refused = await api.post(
        "/commands/add-messages",
        json={"messages": [{"tenant_id": "acme", "id": "s2", "from": "a@example.com",
                            "to": "BOB@example.com", "subject": "Again"}]},
    )  # fmt: skip
    assert refused.json()["queued"] == 0 and "suppression list" in refused.text

    rules = BounceRules(SoftBouncePolicy(limit=3, window=3600), match_window=86400)
    dsn = read_returned(postfix_dsn("c@example.com", mail_id="s1", message_id=None))
    await runtime.store.mailboxes.record("bounces", [("1:1", dsn)], tenant_id=None,
                                         rules=rules, now=runtime.clock.now())  # fmt: skip
    overview = (await tenant.get("/ui/overview/live")).text
    assert "Recent bounces" in overview and "c@example.com" in overview and "5.1.1" in overview
    assert "/ui/message?tenant=acme&amp;id=s1" in overview
    others = (await (await ui(await tenant_key("third"))).get("/ui/overview/live")).text
    assert "c@example.com" not in others and "No bounces yet" in others
