"""The instance-settings use cases over a real SQLite store: the bounce mailbox."""

from __future__ import annotations

import pytest

from mail_proxy.ports import Store
from mail_proxy.schemas import BounceSettings
from mail_proxy.services.instance import InstanceService

DEFAULTS = BounceSettings().model_dump()


@pytest.fixture
def instance(sqlite_store: Store) -> InstanceService:
    return InstanceService(sqlite_store, DEFAULTS)


async def test_never_configured(instance: InstanceService) -> None:
    view = await instance.get()
    assert (view.name, view.bounce, view.active) == (None, None, True)


async def test_bounce_password_none_keeps_the_stored_one(instance: InstanceService) -> None:
    """A bounce replaced without a password keeps the stored password."""
    bounce = DEFAULTS | {"imap_host": "imap.example.com", "imap_password": "pw-1"}
    view = await instance.update({"name": "eu-1", "bounce": bounce}, {})
    assert view.name == "eu-1" and view.bounce == bounce
    view = await instance.update({"bounce": bounce | {"imap_password": None}}, {})
    assert view.bounce is not None and view.bounce["imap_password"] == "pw-1"


async def test_single_bounce_settings_apply_over_stored_or_given(
    instance: InstanceService,
) -> None:
    """Single settings land on the stored bounce (on the defaults when none is
    stored), or on the bounce given beside them."""
    view = await instance.update({}, {"imap_host": "imap.example.com", "imap_password": "pw"})
    assert view.bounce == DEFAULTS | {"imap_host": "imap.example.com", "imap_password": "pw"}
    view = await instance.update({}, {"poll_interval_seconds": 120, "imap_password": None})
    assert view.bounce is not None and view.bounce["imap_host"] == "imap.example.com"
    assert (view.bounce["poll_interval_seconds"], view.bounce["imap_password"]) == (120, "pw")
    view = await instance.update({"bounce": DEFAULTS}, {"enabled": True})
    assert view.bounce == DEFAULTS | {"enabled": True, "imap_password": "pw"}


async def test_reload_bounce_replaces_when_given(instance: InstanceService) -> None:
    assert await instance.reload_bounce(None) is None
    stored = await instance.reload_bounce(DEFAULTS | {"imap_password": "pw"})
    assert stored == DEFAULTS | {"imap_password": "pw"}
    assert await instance.reload_bounce(DEFAULTS) == stored
