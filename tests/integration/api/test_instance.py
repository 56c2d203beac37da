"""Instance settings and the bounce settings (stored; no poller in this version)."""

from __future__ import annotations

import httpx

from mail_proxy.runtime import Runtime
from mail_proxy.schemas import MASK


async def test_instance_settings_round_trip_with_masked_password(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """PUT stores name and bounce settings; GET masks the IMAP password and keeps it;
    the settings are at top level beside ok."""
    bounce = {"enabled": True, "imap_host": "imap.example.com", "imap_port": 993,
              "imap_user": "bounces", "imap_password": "imap-pw"}  # fmt: skip
    saved = await client.put("/instance", json={"name": "eu-1", "bounce": bounce})
    assert "imap-pw" not in saved.text
    instance = saved.json()
    assert instance["ok"] is True and "instance" not in instance
    assert instance["name"] == "eu-1" and instance["bounce"]["imap_password"] == MASK
    assert instance["test_mode"] is True and instance["default_priority"] == 2
    await client.put("/instance", json={"bounce": instance["bounce"]})
    stored = await runtime.store.instance.get()
    assert stored["bounce"]["imap_password"] == "imap-pw"
    assert (await client.get("/instance")).json()["name"] == "eu-1"


async def test_flat_bounce_fields_change_one_setting_each(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The reference's flat bounce_* fields are read and written; each PUT changes only
    what it names, and the password never comes back."""
    await client.put("/instance", json={"bounce": {"enabled": False, "imap_folder": "Bounces"}})
    flat = {"bounce_enabled": True, "bounce_imap_host": "imap.example.com",
            "bounce_imap_port": 143, "bounce_imap_password": "pw-1",
            "bounce_poll_interval": 120}  # fmt: skip
    saved = (await client.put("/instance", json=flat)).json()
    assert {k: saved[k] for k in ("bounce_enabled", "bounce_imap_host", "bounce_imap_port",
            "bounce_imap_folder", "bounce_poll_interval")} == {
        "bounce_enabled": True, "bounce_imap_host": "imap.example.com",
        "bounce_imap_port": 143, "bounce_imap_folder": "Bounces", "bounce_poll_interval": 120,
    }  # fmt: skip
    assert "bounce_imap_password" not in saved and "pw-1" not in str(saved)
    assert saved["bounce"]["imap_host"] == "imap.example.com"
    await client.put("/instance", json={"bounce_imap_user": "bounces"})
    stored = (await runtime.store.instance.get())["bounce"]
    assert stored["imap_password"] == "pw-1" and stored["imap_user"] == "bounces"
    assert stored["poll_interval_seconds"] == 120
    bad = await client.put("/instance", json={"bounce_poll_interval": 1})
    assert bad.status_code == 422
    cleared = await client.put("/instance", json={"bounce_enabled": None})
    assert cleared.status_code == 400
    assert cleared.json()["fields"][0]["field"] == "bounce_enabled"


async def test_unset_instance_has_defaults(client: httpx.AsyncClient) -> None:
    """An instance never configured answers the documented defaults."""
    body = (await client.get("/instance")).json()
    assert body["bounce"] is None and body["bounce_enabled"] is False
    assert body["bounce_imap_folder"] == "INBOX" and body["bounce_imap_ssl"] is True
    assert body["active"] is True


async def test_reload_bounce_says_whether_it_polls(client: httpx.AsyncClient) -> None:
    """reload-bounce validates and stores the settings and says whether they poll."""
    answer = await client.post(
        "/instance/reload-bounce", json={"enabled": True, "imap_host": "imap.example.com"}
    )
    body = answer.json()
    assert body["ok"] is True and body["polling"] is True
    assert "restarts" in body["detail"]
    assert body["bounce"]["imap_host"] == "imap.example.com"
    off = (await client.post("/instance/reload-bounce", json={"enabled": False})).json()
    assert off["polling"] is False and "off" in off["detail"]
    bad = await client.post("/instance/reload-bounce", json={"imap_port": 0})
    assert bad.status_code == 422
