"""SQLite payment store: the embedded default (one file, WAL, several processes)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from services.common.payments_store import (
    COLUMNS,
    TABLE,
    Outcome,
    PaymentRow,
    PaymentStore,
    Recorded,
    decide,
    dumps,
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
VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
ON CONFLICT (token) DO UPDATE
   SET state = excluded.state, fingerprint = excluded.fingerprint, answer = excluded.answer,
       event = excluded.event, published = 0, owner = excluded.owner,
       lease_expires = excluded.lease_expires, source = excluded.source,
       updated_at = excluded.updated_at, due_at = excluded.due_at
 WHERE {TABLE}.state = 'initialized'
"""


class SqlitePaymentStore(PaymentStore):
    db: aiosqlite.Connection | None = None
    _lock: asyncio.Lock | None = None

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _write(self, sql: str, args: tuple[object, ...]) -> int:
        """One statement outside any other task's transaction on the shared connection."""
        async with self._guard():
            cur = await self._conn().execute(sql, args)
            return cur.rowcount

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one decision across processes; one at a time here,
        since all tasks of this process share the connection."""
        db = self._conn()
        async with self._guard():
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    @property
    def path(self) -> str:
        return self.settings.url.removeprefix("sqlite:///")

    async def open(self) -> None:
        if self.db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute("PRAGMA synchronous=NORMAL")
        await self.db.execute("PRAGMA busy_timeout=30000")
        await self.db.executescript(SCHEMA)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    def _conn(self) -> aiosqlite.Connection:
        if self.db is None:
            raise RuntimeError("store is not open")
        return self.db

    async def ping(self) -> None:
        await (await self._conn().execute("SELECT 1")).fetchone()

    async def record_initialized(self, token: str, order_id: str, due_at: float) -> None:
        now = time.time()
        await self._write(
            f"INSERT INTO {TABLE} (token, order_id, state, initialized_at, due_at, created_at,"
            " updated_at) VALUES (?, ?, 'initialized', ?, ?, ?, ?)"
            f" ON CONFLICT (token) DO UPDATE SET order_id = COALESCE({TABLE}.order_id,"
            " excluded.order_id), initialized_at = excluded.initialized_at",
            (token, order_id, now, due_at, now, now),
        )

    async def _select(self, token: str) -> PaymentRow | None:
        cur = await self._conn().execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE token=?", (token,))
        row = await cur.fetchone()
        return None if row is None else row_from(row)

    async def record_outcome(self, outcome: Outcome, owner: str, lease_s: float) -> Recorded:
        now = time.time()
        async with self._transaction() as db:
            await db.execute(
                RECORD,
                (
                    outcome.token,
                    outcome.state,
                    outcome.fingerprint,
                    dumps(outcome.answer),
                    outcome.event,
                    owner,
                    now + lease_s,
                    outcome.source,
                    now,
                    now,
                    outcome.recheck_at,
                ),
            )
            row = await self._select(outcome.token)
        assert row is not None
        return Recorded(decide(row, outcome, owner), row)

    async def mark_published(self, token: str, owner: str) -> bool:
        return (
            await self._write(
                f"UPDATE {TABLE} SET published=1, lease_expires=NULL, updated_at=? "
                "WHERE token=? AND owner=? AND published=0",
                (time.time(), token, owner),
            )
            == 1
        )

    async def take_unpublished(
        self, owner: str, lease_s: float, limit: int = 100
    ) -> list[PaymentRow]:
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                f"SELECT token FROM {TABLE} WHERE published=0 AND state != 'initialized' "
                "AND lease_expires < ? LIMIT ?",
                (now, limit),
            )
            tokens = [r[0] for r in await cur.fetchall()]
            rows = []
            for token in tokens:
                await db.execute(
                    f"UPDATE {TABLE} SET owner=?, lease_expires=? WHERE token=?",
                    (owner, now + lease_s, token),
                )
                row = await self._select(token)
                if row is not None:
                    rows.append(row)
        return rows

    async def take_due(self, recheck_s: float, limit: int = 100) -> list[PaymentRow]:
        now = time.time()
        async with self._transaction() as db:
            cur = await db.execute(
                f"SELECT token FROM {TABLE} WHERE due_at <= ? LIMIT ?",
                (now, limit),
            )
            tokens = [r[0] for r in await cur.fetchall()]
            rows = []
            for token in tokens:
                await db.execute(
                    f"UPDATE {TABLE} SET due_at=? WHERE token=?", (now + recheck_s, token)
                )
                row = await self._select(token)
                if row is not None:
                    rows.append(row)
        return rows

    async def clear_due(self, token: str) -> None:
        await self._write(f"UPDATE {TABLE} SET due_at=NULL WHERE token=?", (token,))

    async def get(self, token: str) -> PaymentRow | None:
        async with self._guard():
            return await self._select(token)

    async def purge(self, older_than_s: float | None = None) -> int:
        return await self._write(
            f"DELETE FROM {TABLE} WHERE published=1 AND updated_at < ?",
            (self._age(older_than_s),),
        )
