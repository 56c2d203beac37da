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
    SELECT waiting.pk, waiting.tenant_id, waiting.account_id, waiting.priority
    FROM messages waiting
    WHERE waiting.status IN ('pending', 'deferred')
      AND waiting.priority BETWEEN :min_priority AND :max_priority
      AND (waiting.deferred_ts IS NULL OR waiting.deferred_ts <= :now)
      AND (waiting.lease_expires IS NULL OR waiting.lease_expires <= :now)
      AND NOT EXISTS (
          SELECT 1 FROM suspensions
          WHERE suspensions.tenant_id = waiting.tenant_id
            AND (suspensions.batch_code = '*' OR suspensions.batch_code = waiting.batch_code))
      AND NOT EXISTS (
          SELECT 1 FROM tenants WHERE tenants.id = waiting.tenant_id AND NOT tenants.active)
    ORDER BY waiting.priority, waiting.pk
    LIMIT :scan
"""

_PICKED = """
    SELECT ranked.pk FROM (
        SELECT due.pk, due.priority,
               row_number() OVER (PARTITION BY due.tenant_id, due.account_id
                                  ORDER BY due.priority, due.pk) AS rank_in_account,
               COALESCE(accounts.batch_size, :per_account) AS cap
        FROM due
        LEFT JOIN accounts ON accounts.tenant_id = due.tenant_id AND accounts.id = due.account_id
    ) ranked
    WHERE ranked.rank_in_account <= ranked.cap
    ORDER BY ranked.priority, ranked.pk
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
    WITH due AS ({_DUE} FOR UPDATE OF waiting SKIP LOCKED),
         picked AS ({_PICKED})
    UPDATE messages SET lease_token = :token, lease_expires = :expires
    FROM picked WHERE messages.pk = picked.pk
    RETURNING {_COLUMNS}
    """
)
