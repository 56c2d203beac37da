"""What the proxy needs from persistence, one small interface per consumer.

The dispatcher needs a queue and a send log, the sync loop an outbox and the sync
state, the use cases the administrative ports. Each consumer names only the ports it
uses, so a new loop or front door adds a port instead of widening one interface.
``Store`` gathers the ports of one database; ``mail_proxy.storage`` implements them
over SQLite and PostgreSQL.
"""

from mail_proxy.ports.admin import (
    Accounts,
    Audit,
    AuditFilter,
    Control,
    InstanceSettings,
    Tenants,
)
from mail_proxy.ports.messages import DeleteResult, MessageFilter, Messages
from mail_proxy.ports.offloaded_files import OffloadedFiles
from mail_proxy.ports.overview import AccountSends, Backlog, MinuteCount, Overview
from mail_proxy.ports.queue import Intake, Queue, SendLog, WorkSignals
from mail_proxy.ports.sessions import SessionRecord, Sessions
from mail_proxy.ports.store import Store
from mail_proxy.ports.sync import Outbox, SyncState, TenantSyncState

__all__ = [
    "AccountSends",
    "Accounts",
    "Audit",
    "AuditFilter",
    "Backlog",
    "Control",
    "DeleteResult",
    "InstanceSettings",
    "Intake",
    "MessageFilter",
    "Messages",
    "MinuteCount",
    "OffloadedFiles",
    "Outbox",
    "Overview",
    "Queue",
    "SendLog",
    "SessionRecord",
    "Sessions",
    "Store",
    "SyncState",
    "TenantSyncState",
    "Tenants",
    "WorkSignals",
]
