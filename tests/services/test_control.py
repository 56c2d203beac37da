"""The control service on a real SQLite store: suspensions, run-now, status, gauges."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mail_proxy.domain.models import Deferred, NewMessage, Tenant
from mail_proxy.errors import Conflict, NotFound
from mail_proxy.metrics import Metrics
from mail_proxy.ports import Store
from mail_proxy.services.control import (
    ControlService,
    Wakeups,
)

NOW = 1_700_000_000.0


@dataclass
class Woken:
    """What the service asked of the loops, in order."""

    calls: list[tuple[str, object]] = field(default_factory=list)

    def wakeups(self) -> Wakeups:
        return Wakeups(
            dispatch=lambda: self.calls.append(("dispatch", None)),
            run_now=lambda: self.calls.append(("run_now", None)),
            sync=lambda tenant_id: self.calls.append(("sync", tenant_id)),
            instance_switched=lambda active: self.calls.append(("instance", active)),
        )


def _message(id_: str, batch_code: str | None = None, tenant: str = "acme") -> NewMessage:
    payload = {"from": "a@example.com", "to": ["b@example.com"], "subject": "hi"}
    return NewMessage(tenant, id_, "smtp1", 2, payload, batch_code=batch_code)


@pytest.fixture
async def store(sqlite_store: Store) -> Store:
    await sqlite_store.tenants.create(Tenant(id="acme", name="Acme"), None, NOW)
    await sqlite_store.intake.enqueue(
        [_message("m1", "news"), _message("m2", "news"), _message("m3")], NOW - 30
    )
    return sqlite_store


@pytest.fixture
def woken() -> Woken:
    return Woken()


@pytest.fixture
def control(store: Store, woken: Woken) -> ControlService:
    return ControlService(store, woken.wakeups(), started_at=NOW - 90, clock=lambda: NOW)


async def test_run_now_wakes_dispatch_and_the_tenants_sync(
    control: ControlService, woken: Woken
) -> None:
    await control.run_now("acme")
    await control.run_now(None)
    assert woken.calls == [("run_now", None), ("sync", "acme"), ("run_now", None), ("sync", None)]


async def test_run_now_for_an_unknown_tenant_wakes_nothing(
    control: ControlService, woken: Woken
) -> None:
    with pytest.raises(NotFound):
        await control.run_now("ghost")
    assert woken.calls == []


async def test_suspending_a_batch_holds_only_its_messages(
    control: ControlService, store: Store
) -> None:
    done = await control.suspend("acme", "news")
    assert (done.tenant_id, done.batch_code, done.active) == ("acme", "news", False)
    assert done.suspended_batches == ["news"]
    assert done.pending == 2
    assert await store.control.suspensions("acme") == ["news"]


async def test_suspending_the_whole_tenant_counts_all_its_pending(control: ControlService) -> None:
    for batch_code in (None, "*"):
        done = await control.suspend("acme", batch_code)
        assert (done.batch_code, done.suspended_batches, done.pending) == (None, ["*"], 3)


async def test_a_batch_stays_held_while_the_whole_tenant_is_suspended(
    control: ControlService, store: Store, woken: Woken
) -> None:
    await control.suspend("acme", None)
    with pytest.raises(Conflict):
        await control.activate("acme", "news")
    assert await store.control.suspensions("acme") == ["*"]
    assert woken.calls == []


async def test_activating_the_tenant_clears_every_suspension_and_wakes_dispatch(
    control: ControlService, store: Store, woken: Woken
) -> None:
    await control.suspend("acme", "news")
    await control.suspend("acme", "*")
    done = await control.activate("acme", "*")
    assert (done.suspended_batches, done.active, done.pending) == ([], True, 3)
    assert await store.control.suspensions("acme") == []
    assert woken.calls == [("dispatch", None)]


async def test_activating_one_batch_keeps_the_others(control: ControlService, store: Store) -> None:
    await control.suspend("acme", "news")
    await control.suspend("acme", "promo")
    done = await control.activate("acme", "news")
    assert (done.batch_code, done.suspended_batches, done.pending) == ("news", ["promo"], 2)


async def test_suspend_and_activate_of_an_unknown_tenant(control: ControlService) -> None:
    with pytest.raises(NotFound):
        await control.suspend("ghost", None)
    with pytest.raises(NotFound):
        await control.activate("ghost", None)


async def test_the_instance_flag_is_stored_and_applied_here(
    control: ControlService, store: Store, woken: Woken
) -> None:
    held = await control.suspend(None, "ignored")
    assert (held.tenant_id, held.batch_code, held.active, held.pending) == (None, None, False, 3)
    assert await store.control.instance_active() is False
    assert (await control.status(None)).active is False
    await control.activate(None, None)
    assert await store.control.instance_active() is True
    assert woken.calls == [("instance", False), ("instance", True)]


async def test_status_counts_the_scope_and_the_uptime(
    control: ControlService, store: Store
) -> None:
    await store.tenants.create(Tenant(id="other"), None, NOW)
    await store.intake.enqueue([_message("x", tenant="other")], NOW)
    everyone = await control.status(None)
    assert (everyone.active, everyone.pending, everyone.uptime_seconds) == (True, 4, 90)
    assert (await control.status("other")).pending == 1


def _gauge(metrics: Metrics, name: str) -> float | None:
    value: float | None = metrics.registry.get_sample_value(name)
    return value


async def test_gauges_mirror_the_queue_and_the_outbox(store: Store) -> None:
    metrics = Metrics()
    [claimed] = await store.queue.claim(now=NOW, lease_seconds=60, limit=1, per_account=1)
    deferral = Deferred(until=NOW + 60, reason="451 busy", ts=NOW - 5)
    assert await store.queue.finish(claimed.record.pk, claimed.lease_token, deferral)
    await metrics.mirror_database(store, NOW)
    assert _gauge(metrics, "gmp_pending_messages") == 3
    assert _gauge(metrics, "gmp_oldest_due_message_age_seconds") == 30
    assert _gauge(metrics, "gmp_reports_pending") == 1
    assert _gauge(metrics, "gmp_oldest_unreported_event_age_seconds") == 5


async def test_gauges_read_zero_when_nothing_waits(sqlite_store: Store) -> None:
    metrics = Metrics()
    metrics.oldest_unreported_age.set(12)
    await metrics.mirror_outbox(sqlite_store.outbox, NOW)
    await metrics.mirror_database(sqlite_store, NOW)
    assert _gauge(metrics, "gmp_reports_pending") == 0
    assert _gauge(metrics, "gmp_oldest_unreported_event_age_seconds") == 0
    assert _gauge(metrics, "gmp_oldest_due_message_age_seconds") == 0
