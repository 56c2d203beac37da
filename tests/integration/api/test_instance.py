"""Instance settings and the bounce settings (stored; no poller in this version)."""

from __future__ import annotations

import httpx

from mail_proxy.runtime import Runtime
from mail_proxy.schemas import MASK


async def test_instance_settings_round_trip_with_masked_password(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """PUT stores name and bounce settings; GET masks the IMAP password and keeps it."""
    bounce = {"enabled": True, "imap_host": "imap.example.com", "imap_port": 993,
              "imap_user": "bounces", "imap_password": "imap-pw"}  # fmt: skip
    saved = await client.put("/instance", json={"name": "eu-1", "bounce": bounce})
    assert "imap-pw" not in saved.text
    instance = saved.json()["instance"]
    assert instance["name"] == "eu-1" and instance["bounce"]["imap_password"] == MASK
    assert instance["test_mode"] is True and instance["default_priority"] == 2
    await client.put("/instance", json={"bounce": instance["bounce"]})
    stored = await runtime.store.get_instance_settings()
    assert stored["bounce"]["imap_password"] == "imap-pw"
    assert (await client.get("/instance")).json()["instance"]["name"] == "eu-1"


async def test_reload_bounce_says_plainly_that_nothing_polls(client: httpx.AsyncClient) -> None:
    """reload-bounce validates and stores the settings and reports polling false."""
    answer = await client.post(
        "/instance/reload-bounce", json={"enabled": True, "imap_host": "imap.example.com"}
    )
    body = answer.json()
    assert body["ok"] is True and body["polling"] is False
    assert "does not poll" in body["detail"]
    assert body["bounce"]["imap_host"] == "imap.example.com"
    bad = await client.post("/instance/reload-bounce", json={"imap_port": 0})
    assert bad.status_code == 422
