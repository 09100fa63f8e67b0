"""PostgreSQL payment store: shared by several replicas of the payment-notifier."""

from __future__ import annotations

import time

import asyncpg

from services.common.stores.base import PostgresBacked
from services.common.stores.batching import Batcher
from services.common.stores.payments import (
    COLUMNS,
    INITIALIZED,
    ORDER_ID_JSON_MARK,
    TABLE,
    Outcome,
    PaymentRow,
    PaymentStore,
    Recorded,
    decide,
    row_from,
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    token TEXT PRIMARY KEY,
    order_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('initialized', 'confirmed', 'failed')),
    fingerprint TEXT,
    answer TEXT,
    event TEXT,
    published BOOLEAN NOT NULL DEFAULT FALSE,
    owner TEXT,
    lease_expires DOUBLE PRECISION,
    source TEXT,
    initialized_at DOUBLE PRECISION,
    due_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
-- Partial indexes: only the rows a query looks for are in them. A confirmation's row
-- (no recheck due) is not in the first, and leaves the second once published: fewer
-- index entries written per confirmation (its insert and its publish).
CREATE INDEX IF NOT EXISTS {TABLE}_due ON {TABLE} (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS {TABLE}_unpublished ON {TABLE} (lease_expires) WHERE NOT published;
DROP INDEX IF EXISTS {TABLE}_due_at;
DROP INDEX IF EXISTS {TABLE}_outbox;
"""

# One statement for a batch of outcomes (distinct tokens, services/common/stores/
# batching.py): the database decides who records each. The rows are inserted in token
# order, so two replicas' batches lock shared tokens in the same order (no deadlock). A
# token still 'initialized' gets its order id written into the raw answer and event (the
# inserted values already have null there). The CTE's rows are the winners'; for the other
# tokens the existing row is read.
RECORD_MANY = f"""
WITH i AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::float8[], $8::text[], $9::float8[])
        AS i(token, state, fingerprint, answer, event, owner, lease_expires, source, due_at)
), up AS (
    INSERT INTO {TABLE} AS p (token, state, fingerprint, answer, event, published, owner,
                              lease_expires, source, created_at, updated_at, due_at)
    SELECT token, state, fingerprint, replace(answer, $11, 'null'), replace(event, $11, 'null'),
           FALSE, owner, lease_expires, source, $10, $10, due_at
      FROM i ORDER BY token
    ON CONFLICT (token) DO UPDATE
       SET state = excluded.state, fingerprint = excluded.fingerprint,
           answer = (SELECT replace(i.answer, $11, COALESCE('"' || p.order_id || '"', 'null'))
                       FROM i WHERE i.token = excluded.token),
           event = (SELECT replace(i.event, $11, COALESCE('"' || p.order_id || '"', 'null'))
                      FROM i WHERE i.token = excluded.token),
           published = FALSE,
           owner = excluded.owner, lease_expires = excluded.lease_expires,
           source = excluded.source, updated_at = excluded.updated_at,
           due_at = excluded.due_at
     WHERE p.state = 'initialized'
    RETURNING {COLUMNS}
)
SELECT {COLUMNS} FROM up
UNION ALL
SELECT {COLUMNS} FROM {TABLE}
 WHERE token = ANY($1::text[]) AND token NOT IN (SELECT token FROM up)
"""
Pending = tuple[Outcome, str, float]  # (outcome, owner, lease_s)


def _one_bad(exc: Exception) -> bool:
    """A batch's error that may come from one of its rows: retried row by row."""
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.PostgresConnectionError
    )


TAKE_UNPUBLISHED = f"""
UPDATE {TABLE} SET owner = $1, lease_expires = $2
 WHERE token IN (SELECT token FROM {TABLE}
                  WHERE NOT published AND state <> 'initialized' AND lease_expires < $3
                  LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING {COLUMNS}
"""

TAKE_DUE = f"""
UPDATE {TABLE} SET due_at = $1
 WHERE token IN (SELECT token FROM {TABLE}
                  WHERE due_at <= $2
                  LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING {COLUMNS}
"""


class PostgresPaymentStore(PostgresBacked, PaymentStore):
    schema = SCHEMA
    _batch: Batcher[Pending, PaymentRow | None] | None = None

    def _pool(self) -> asyncpg.Pool:
        return self.db.pool

    async def record_initialized(self, token: str, order_id: str, due_at: float) -> None:
        now = time.time()
        await self._pool().execute(
            f"INSERT INTO {TABLE} AS p (token, order_id, state, initialized_at, due_at,"
            " created_at, updated_at) VALUES ($1, $2, 'initialized', $3, $4, $3, $3)"
            " ON CONFLICT (token) DO UPDATE SET order_id = COALESCE(p.order_id,"
            " excluded.order_id), initialized_at = excluded.initialized_at",
            token,
            order_id,
            now,
            due_at,
        )

    async def record_outcome(self, outcome: Outcome, owner: str, lease_s: float) -> Recorded:
        # Concurrent calls share one statement and one commit (group commit, batching.py).
        row = await self._batcher().submit((outcome, owner, lease_s))
        if row is None or (row.owner != owner and row.state == INITIALIZED):
            # Not ours and not final: the SELECT half ran on this statement's snapshot,
            # which may hold the row as it was before a concurrent winner committed (still
            # 'initialized', or absent). ON CONFLICT waited for that commit, so a new
            # statement sees it. A final row read here is committed: it stands.
            row = await self.get(outcome.token)
        if row is None:  # pragma: no cover - purged in between; start again
            return await self.record_outcome(outcome, owner, lease_s)
        return Recorded(decide(row, outcome, owner), row)

    def _batcher(self) -> Batcher[Pending, PaymentRow | None]:
        if self._batch is None:
            self._batch = Batcher(self._record_many, key=lambda p: p[0].token, isolate=_one_bad)
        return self._batch

    async def _record_many(self, pending: list[Pending]) -> list[PaymentRow | None]:
        """Each outcome's row after the statement (None: none seen), in the given order."""
        now = time.time()
        ordered = sorted(pending, key=lambda p: p[0].token)
        columns: list[list[object]] = [[] for _ in range(9)]
        for outcome, owner, lease_s in ordered:
            values = (
                outcome.token,
                outcome.state,
                outcome.fingerprint,
                outcome.answer,
                outcome.event,
                owner,
                now + lease_s,
                outcome.source,
                outcome.recheck_at,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        records = await self._pool().fetch(RECORD_MANY, *columns, now, ORDER_ID_JSON_MARK)
        rows = {r[0]: row_from(r) for r in records}
        return [rows.get(outcome.token) for outcome, _, _ in pending]

    async def close(self) -> None:
        if self._batch is not None:
            await self._batch.close()
            self._batch = None
        await super().close()

    async def mark_published_many(self, tokens: list[str], owner: str) -> int:
        if not tokens:
            return 0
        status = await self._pool().execute(
            f"UPDATE {TABLE} SET published=TRUE, lease_expires=NULL, updated_at=$1 "
            "WHERE token = ANY($2::text[]) AND NOT published "
            "AND (owner = $3 OR starts_with(owner, $3 || '/'))",
            time.time(),
            tokens,
            owner,
        )
        return int(status.split()[-1])

    async def renew_leases(self, owner: str, lease_s: float) -> int:
        status = await self._pool().execute(
            f"UPDATE {TABLE} SET lease_expires=$1 "
            "WHERE NOT published AND (owner = $2 OR starts_with(owner, $2 || '/'))",
            time.time() + lease_s,
            owner,
        )
        return int(status.split()[-1])

    async def take_unpublished(
        self, owner: str, lease_s: float, limit: int = 100
    ) -> list[PaymentRow]:
        now = time.time()
        rows = await self._pool().fetch(TAKE_UNPUBLISHED, owner, now + lease_s, now, limit)
        return [row_from(r) for r in rows]

    async def take_due(self, recheck_s: float, limit: int = 100) -> list[PaymentRow]:
        now = time.time()
        rows = await self._pool().fetch(TAKE_DUE, now + recheck_s, now, limit)
        return [row_from(r) for r in rows]

    async def clear_due(self, token: str) -> None:
        await self._pool().execute(f"UPDATE {TABLE} SET due_at=NULL WHERE token=$1", token)

    async def get(self, token: str) -> PaymentRow | None:
        values = await self._pool().fetchrow(f"SELECT {COLUMNS} FROM {TABLE} WHERE token=$1", token)
        return None if values is None else row_from(values)

    async def outbox_backlog(self) -> tuple[int, float | None]:
        row = await self._pool().fetchrow(
            f"SELECT COUNT(*), MIN(updated_at) FROM {TABLE} "
            "WHERE NOT published AND state <> 'initialized'"
        )
        count, oldest = (0, None) if row is None else (row[0], row[1])
        return int(count), None if oldest is None else float(oldest)

    async def purge(self, older_than_s: float | None = None) -> int:
        status = await self._pool().execute(
            f"DELETE FROM {TABLE} WHERE published AND updated_at < $1", self._age(older_than_s)
        )
        return int(status.split()[-1])
