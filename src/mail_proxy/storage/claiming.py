"""The claim query, shared by both backends up to the locking clause.

A claim looks at the first ``scan`` due messages in dispatch order (priority, then
pk) through the partial index over active rows, so finished history is never read.
Within that window each account contributes at most its cap (its own
``batch_size``, else ``per_account``) and the first ``limit`` survivors are leased
with one UPDATE. A dispatcher that claims repeatedly still drains one account's
backlog before later messages of other accounts at the same priority when that
backlog exceeds the window: FIFO wins over fairness beyond ``scan`` rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from mail_proxy.storage.tables import messages

# Explicit and in table order: ``records.message_record`` reads rows by position.
_COLUMNS = ", ".join(f"messages.{column.name}" for column in messages.columns)

_DUE = """
    SELECT m.pk, m.tenant_id, m.account_id, m.priority
    FROM messages m
    WHERE m.status IN ('pending', 'deferred')
      AND m.priority BETWEEN :min_priority AND :max_priority
      AND (m.deferred_ts IS NULL OR m.deferred_ts <= :now)
      AND (m.lease_expires IS NULL OR m.lease_expires <= :now)
      AND NOT EXISTS (
          SELECT 1 FROM suspensions s
          WHERE s.tenant_id = m.tenant_id AND (s.batch_code = '*' OR s.batch_code = m.batch_code))
      AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = m.tenant_id AND NOT t.active)
    ORDER BY m.priority, m.pk
    LIMIT :scan
"""

_PICKED = """
    SELECT r.pk FROM (
        SELECT d.pk, d.priority,
               row_number() OVER (PARTITION BY d.tenant_id, d.account_id
                                  ORDER BY d.priority, d.pk) AS rank_in_account,
               COALESCE(a.batch_size, :per_account) AS cap
        FROM due d
        LEFT JOIN accounts a ON a.tenant_id = d.tenant_id AND a.id = d.account_id
    ) r
    WHERE r.rank_in_account <= r.cap
    ORDER BY r.priority, r.pk
    LIMIT :limit
"""

SQLITE_CLAIM = sa.text(
    f"""
    UPDATE messages SET lease_token = :token, lease_expires = :expires
    WHERE pk IN (WITH due AS ({_DUE}) {_PICKED})
    RETURNING {_COLUMNS}
    """
)

# SKIP LOCKED: rows another claimer is leasing right now are passed over, not waited
# for, so concurrent dispatchers each take different messages.
POSTGRES_CLAIM = sa.text(
    f"""
    WITH due AS ({_DUE} FOR UPDATE OF m SKIP LOCKED),
         picked AS ({_PICKED})
    UPDATE messages SET lease_token = :token, lease_expires = :expires
    FROM picked WHERE messages.pk = picked.pk
    RETURNING {_COLUMNS}
    """
)
