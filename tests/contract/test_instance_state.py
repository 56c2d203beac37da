"""Instance-wide suspension is stored state: shared by stores, kept across reopen."""

from __future__ import annotations

from mail_proxy.settings import Settings
from mail_proxy.storage import open_store


async def test_instance_is_active_until_suspended_and_every_store_sees_it(
    db_settings: Settings,
) -> None:
    """Two stores on one database (two processes): one suspends, the other reads it;
    a store opened afterwards (a restart) still reads it, until it is activated."""
    first, second = await open_store(db_settings), await open_store(db_settings)
    try:
        assert await first.control.instance_active() is True
        await first.control.set_instance_active(False)
        await first.control.set_instance_active(False)  # twice: an upsert, not a second row
        assert await second.control.instance_active() is False
    finally:
        await first.close()
        await second.close()
    reopened = await open_store(db_settings)
    try:
        assert await reopened.control.instance_active() is False
        await reopened.control.set_instance_active(True)
        assert await reopened.control.instance_active() is True
    finally:
        await reopened.close()


async def test_a_starting_value_never_overrides_a_stored_state(db_settings: Settings) -> None:
    """GMP_SCHEDULER_ACTIVE=false sets a starting value only: on a fresh database it
    suspends, after an operator's activate it changes nothing."""
    store = await open_store(db_settings)
    try:
        await store.control.set_instance_active(False, if_unset=True)
        assert await store.control.instance_active() is False
        await store.control.set_instance_active(True)
        await store.control.set_instance_active(False, if_unset=True)
        assert await store.control.instance_active() is True
    finally:
        await store.close()
