"""``Store``: the ports of one database, opened and closed together."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mail_proxy.ports.admin import Accounts, Audit, Control, InstanceSettings, Tenants
from mail_proxy.ports.messages import Messages
from mail_proxy.ports.offloaded_files import OffloadedFiles
from mail_proxy.ports.overview import Overview
from mail_proxy.ports.queue import Intake, Queue, SendLog, WorkSignals
from mail_proxy.ports.returned_mail import Bounces, Mailboxes, Suppressions
from mail_proxy.ports.sessions import Sessions
from mail_proxy.ports.sync import Outbox, SyncState


class Store(ABC):
    """Every port over one database. Obtain one with ``storage.open_store``; hand a
    consumer the ports it needs, or the store when it needs several."""

    intake: Intake
    queue: Queue
    send_log: SendLog
    messages: Messages
    outbox: Outbox
    sync_state: SyncState
    tenants: Tenants
    accounts: Accounts
    control: Control
    instance: InstanceSettings
    audit: Audit
    offloaded_files: OffloadedFiles
    work_signals: WorkSignals
    sessions: Sessions
    overview: Overview
    mailboxes: Mailboxes
    bounces: Bounces
    suppressions: Suppressions

    @abstractmethod
    async def close(self) -> None: ...
