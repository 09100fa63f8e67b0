"""SQLite payment store: the embedded default (one file, WAL, several processes)."""

from __future__ import annotations

import time

import aiosqlite

from services.common.stores.base import SqliteBacked
from services.common.stores.payments import (
    COLUMNS,
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
    published INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_expires REAL,
    source TEXT,
    initialized_at REAL,
    due_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_due_at ON {TABLE} (due_at);
CREATE INDEX IF NOT EXISTS {TABLE}_outbox ON {TABLE} (published, lease_expires);
"""

RECORD = f"""
INSERT INTO {TABLE} (token, state, fingerprint, answer, event, published, owner,
                     lease_expires, source, created_at, updated_at, due_at)
VALUES (?1, ?2, ?3, replace(?4, ?12, 'null'), replace(?5, ?12, 'null'), 0, ?6, ?7, ?8, ?9,
        ?10, ?11)
ON CONFLICT (token) DO UPDATE
   SET state = excluded.state, fingerprint = excluded.fingerprint,
       answer = replace(?4, ?12, COALESCE('"' || {TABLE}.order_id || '"', 'null')),
       event = replace(?5, ?12, COALESCE('"' || {TABLE}.order_id || '"', 'null')),
       published = 0, owner = excluded.owner,
       lease_expires = excluded.lease_expires, source = excluded.source,
       updated_at = excluded.updated_at, due_at = excluded.due_at
 WHERE {TABLE}.state = 'initialized'
"""


async def _select(tx: aiosqlite.Connection, token: str) -> PaymentRow | None:
    """Read a row inside a transaction (on its connection)."""
    cur = await tx.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE token=?", (token,))
    row = await cur.fetchone()
    return None if row is None else row_from(row)


# The owner's own rows: its exact name, or under it ("<owner>/<call>", outbox_relay.py).
_OWNED = "(owner = ? OR substr(owner, 1, length(?)) = ?)"


class SqlitePaymentStore(SqliteBacked, PaymentStore):
    schema = SCHEMA

    async def _write(self, sql: str, args: tuple[object, ...]) -> int:
        count, _ = await self.db.execute(sql, args)
        return count

    async def record_initialized(self, token: str, order_id: str, due_at: float) -> None:
        now = time.time()
        await self._write(
            f"INSERT INTO {TABLE} (token, order_id, state, initialized_at, due_at, created_at,"
            " updated_at) VALUES (?, ?, 'initialized', ?, ?, ?, ?)"
            f" ON CONFLICT (token) DO UPDATE SET order_id = COALESCE({TABLE}.order_id,"
            " excluded.order_id), initialized_at = excluded.initialized_at",
            (token, order_id, now, due_at, now, now),
        )

    async def record_outcome(self, outcome: Outcome, owner: str, lease_s: float) -> Recorded:
        now = time.time()
        async with self.db.transaction() as tx:
            await tx.execute(
                RECORD,
                (
                    outcome.token,
                    outcome.state,
                    outcome.fingerprint,
                    outcome.answer,
                    outcome.event,
                    owner,
                    now + lease_s,
                    outcome.source,
                    now,
                    now,
                    outcome.recheck_at,
                    ORDER_ID_JSON_MARK,
                ),
            )
            row = await _select(tx, outcome.token)
        assert row is not None
        return Recorded(decide(row, outcome, owner), row)

    async def mark_published_many(self, tokens: list[str], owner: str) -> int:
        if not tokens:
            return 0
        marks = ",".join("?" * len(tokens))
        return await self._write(
            f"UPDATE {TABLE} SET published=1, lease_expires=NULL, updated_at=? "
            f"WHERE token IN ({marks}) AND published=0 AND {_OWNED}",
            (time.time(), *tokens, owner, owner + "/", owner + "/"),
        )

    async def renew_leases(self, owner: str, lease_s: float) -> int:
        return await self._write(
            f"UPDATE {TABLE} SET lease_expires=? WHERE published=0 AND {_OWNED}",
            (time.time() + lease_s, owner, owner + "/", owner + "/"),
        )

    async def take_unpublished(
        self, owner: str, lease_s: float, limit: int = 100
    ) -> list[PaymentRow]:
        now = time.time()
        async with self.db.transaction() as tx:
            cur = await tx.execute(
                f"SELECT token FROM {TABLE} WHERE published=0 AND state != 'initialized' "
                "AND lease_expires < ? LIMIT ?",
                (now, limit),
            )
            tokens = [r[0] for r in await cur.fetchall()]
            rows = []
            for token in tokens:
                await tx.execute(
                    f"UPDATE {TABLE} SET owner=?, lease_expires=? WHERE token=?",
                    (owner, now + lease_s, token),
                )
                row = await _select(tx, token)
                if row is not None:
                    rows.append(row)
        return rows

    async def take_due(self, recheck_s: float, limit: int = 100) -> list[PaymentRow]:
        now = time.time()
        async with self.db.transaction() as tx:
            cur = await tx.execute(
                f"SELECT token FROM {TABLE} WHERE due_at <= ? LIMIT ?",
                (now, limit),
            )
            tokens = [r[0] for r in await cur.fetchall()]
            rows = []
            for token in tokens:
                await tx.execute(
                    f"UPDATE {TABLE} SET due_at=? WHERE token=?", (now + recheck_s, token)
                )
                row = await _select(tx, token)
                if row is not None:
                    rows.append(row)
        return rows

    async def clear_due(self, token: str) -> None:
        await self._write(f"UPDATE {TABLE} SET due_at=NULL WHERE token=?", (token,))

    async def get(self, token: str) -> PaymentRow | None:
        _, rows = await self.db.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE token=?", (token,))
        return row_from(rows[0]) if rows else None

    async def outbox_backlog(self) -> tuple[int, float | None]:
        _, rows = await self.db.execute(
            f"SELECT COUNT(*), MIN(updated_at) FROM {TABLE} "
            "WHERE published=0 AND state != 'initialized'",
            (),
        )
        count, oldest = rows[0]
        return int(count), None if oldest is None else float(oldest)

    async def purge(self, older_than_s: float | None = None) -> int:
        return await self._write(
            f"DELETE FROM {TABLE} WHERE published=1 AND updated_at < ?",
            (self._age(older_than_s),),
        )
