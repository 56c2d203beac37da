"""Every SDK method against a real ``mail-proxy serve``, with the sync and async client."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from typing import Any

import pytest

from mail_proxy.client import (
    AuthenticationError,
    Conflict,
    NotFound,
    ValidationError,
)
from mail_proxy.schemas import AccountIn, MessageIn
from mail_proxy.testing import ServedProxy

pytestmark = pytest.mark.slow


def _message(message_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "to": "ann@example.com", "subject": "Hi", "body": "B"} | extra


def _wait_sent(proxy: Any, tenant_id: str, n: int) -> None:
    deadline = time.monotonic() + 20
    while proxy.messages.sent(tenant_id).total < n and time.monotonic() < deadline:
        proxy.run_now(tenant_id)
        time.sleep(0.1)
    assert proxy.messages.sent(tenant_id).total == n


def test_service_calls(proxy: Any) -> None:
    assert proxy.health().ok is True
    status = proxy.status()
    assert status.version and status.active is True
    assert "gmp_pending_messages" in proxy.metrics()
    assert proxy.run_now().tenant_id is None


def test_suspend_and_activate_the_instance_a_tenant_and_a_batch(proxy: Any, tenant_id: str) -> None:
    assert proxy.suspend().active is False
    assert proxy.status().active is False
    assert proxy.activate().active is True
    assert proxy.suspend(tenant_id).suspended_batches == ["*"]
    with pytest.raises(Conflict, match="suspended as a whole"):
        proxy.activate(tenant_id, batch_code="news")
    assert proxy.activate(tenant_id).suspended_batches == []
    assert proxy.suspend(tenant_id, batch_code="news").suspended_batches == ["news"]
    assert proxy.activate(tenant_id, "news").active is True


def test_tenants(proxy: Any, connect: Any) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    created = proxy.tenants.add({"id": tenant_id}, name="Acme")
    assert created.created is True and created.api_key
    assert proxy.tenants.create(id=tenant_id, name="Acme 2").created is False
    assert proxy.tenants.get(tenant_id).name == "Acme 2"
    assert tenant_id in [t.id for t in proxy.tenants.list().tenants]
    assert proxy.tenants.update(tenant_id, name="Acme 3").name == "Acme 3"
    assert tenant_id in [t.id for t in proxy.tenants.sync_status().tenants]

    rotated = proxy.tenants.rotate_api_key(tenant_id)
    tenant_client = connect(token=rotated.api_key)
    assert tenant_client.status().ok is True
    with pytest.raises(AuthenticationError):
        connect(token=created.api_key).status()

    secret = proxy.tenants.signing_secret(tenant_id)
    assert isinstance(secret, str) and len(secret) >= 32
    new = proxy.tenants.rotate_signing_secret(tenant_id).signing_secret
    assert new != secret and proxy.tenants.signing_secret(tenant_id) == new

    assert proxy.tenants.revoke_api_key(tenant_id).has_api_key is False
    with pytest.raises(AuthenticationError):
        tenant_client.status()
    assert proxy.tenants.delete(tenant_id).removed == tenant_id
    with pytest.raises(NotFound):
        proxy.tenants.get(tenant_id)


def test_accounts(proxy: Any, tenant_id: str) -> None:
    saved = proxy.accounts.add(AccountIn(id="backup", host="127.0.0.1", tenant_id=tenant_id))
    assert saved.created is True and saved.account.port == 587
    replaced = proxy.accounts.create(id="backup", tenant_id=tenant_id, host="127.0.0.1", port=2525)
    assert replaced.created is False
    assert {a.id for a in proxy.accounts.list(tenant_id).accounts} == {"main", "backup"}
    assert proxy.accounts.get("backup", tenant_id).port == 2525
    assert proxy.accounts.delete("backup", tenant_id).removed == "backup"
    with pytest.raises(NotFound):
        proxy.accounts.get("backup", tenant_id)
    with pytest.raises(NotFound):
        proxy.accounts.delete("backup", tenant_id)


def test_messages(proxy: Any, tenant_id: str) -> None:
    added = proxy.messages.add([_message("m1"), _message("bad", to="")], tenant_id)
    assert added.queued == 1 and [r.id for r in added.rejected] == ["bad"]
    model = MessageIn.model_validate(_message("m2") | {"from": "Me <me@acme.test>"})
    assert proxy.messages.enqueue(model, tenant_id).queued == 1
    assert proxy.messages.pending(tenant_id).total == 2
    assert proxy.messages.get("m2", tenant_id).payload["from"] == "Me <me@acme.test>"

    _wait_sent(proxy, tenant_id, 2)
    assert [e.type for e in proxy.messages.events("m1", tenant_id).events] == ["sent"]
    assert proxy.messages.list(tenant_id, status="sent", limit=1).next_offset == 1
    assert {m.id for m in proxy.messages.all(tenant_id)} == {"m1", "m2"}
    assert proxy.messages.errors(tenant_id).total == 0
    assert proxy.stats(tenant_id).messages["sent"] == 2
    assert proxy.stats().tenants >= 1

    assert proxy.messages.cleanup(tenant_id, older_than_seconds=3600).removed == 0
    deleted = proxy.messages.delete(["m1", "ghost"], tenant_id)
    assert (deleted.removed, deleted.not_found) == (1, ["ghost"])
    with pytest.raises(NotFound):
        proxy.messages.get("m1", tenant_id)


def test_instance_and_command_log(proxy: Any) -> None:
    assert proxy.instance.update(name="sdk-test").name == "sdk-test"
    assert proxy.instance.get().name == "sdk-test"
    reloaded = proxy.instance.reload_bounce({"enabled": False, "imap_folder": "Bounces"})
    assert reloaded.bounce["imap_folder"] == "Bounces"

    entries = proxy.command_log.list(endpoint_filter="PUT /instance").entries
    assert entries and entries[-1].payload == {"name": "sdk-test"}
    replay = json.loads(proxy.command_log.export(endpoint_filter="PUT /instance"))
    assert replay[-1]["endpoint"].startswith("PUT /instance")
    lines = proxy.command_log.export("jsonl", endpoint_filter="/instance").splitlines()
    assert all(json.loads(line)["path"].startswith("/instance") for line in lines)
    rows = list(csv.DictReader(io.StringIO(proxy.command_log.export("csv"))))
    assert any(row["path"] == "/instance" for row in rows)


def test_error_types(proxy: Any, connect: Any, tenant_id: str) -> None:
    with pytest.raises(AuthenticationError, match="Invalid API token") as bad:
        connect(token="wrong").status()
    assert bad.value.status_code == 401
    key = proxy.tenants.rotate_api_key(tenant_id).api_key
    with pytest.raises(AuthenticationError) as admin_only:
        connect(token=key).tenants.list()
    assert admin_only.value.status_code == 403
    assert connect(token=key).stats().tenants == 1
    with pytest.raises(NotFound, match="nope"):
        proxy.messages.events("nope", tenant_id)
    with pytest.raises(ValidationError) as refused:
        proxy.messages.add([_message("x", to=""), {"id": "y"}], tenant_id)
    assert refused.value.status_code == 400
    assert [r.id for r in refused.value.rejected] == ["x", "y"]
    with pytest.raises(ValidationError) as invalid:
        proxy.messages.list(tenant_id, limit=0)
    assert invalid.value.status_code == 422 and invalid.value.fields


def test_url_and_token_from_the_environment(
    connect: Any, served: ServedProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMP_API_URL", served.url)
    monkeypatch.setenv("GMP_API_TOKEN", served.token)
    assert connect(token=None, url=None).status().ok is True


def test_an_unknown_scheme_is_refused_at_once(connect: Any) -> None:
    with pytest.raises(ValueError, match="http"):
        connect(url="ftp://proxy.test")


def test_paths_cannot_be_changed_by_an_id(proxy: Any, tenant_id: str) -> None:
    with pytest.raises(NotFound):
        proxy.messages.get("../../tenants", tenant_id)


def test_the_sdk_and_plain_http_see_the_same_record(proxy: Any, served: ServedProxy) -> None:
    """The models the SDK answers are the API's own answer, field for field."""
    with served.client() as http:
        raw = http.get("/status").json()
    shown = proxy.status().model_dump()
    assert set(raw) == set(shown) and raw["version"] == shown["version"]
