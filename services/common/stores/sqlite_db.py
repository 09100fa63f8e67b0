"""One SQLite database file shared by the stores of a process (and other processes).

WAL journal, busy timeout, autocommit statements, and `transaction()` for the few
decisions that need several statements (BEGIN IMMEDIATE: one writer decides, across
processes too). Statements of concurrent coroutines are serialised by a lock, so no
coroutine's statement can land inside another's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

Rows = list[Any]


class SqliteDb:
    def __init__(self, url: str, schema: str) -> None:
        self.path = url.removeprefix("sqlite:///")
        self.schema = schema
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        await conn.executescript(self.schema)
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError(f"database {self.path} is not open")
        return self._conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> tuple[int, Rows]:
        """One autocommit statement; returns (rowcount, rows)."""
        async with self._lock:
            cur = await self._db().execute(sql, tuple(params))
            rows = list(await cur.fetchall())
            return cur.rowcount, rows

    async def ping(self) -> None:
        await self.execute("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error), holding the lock."""
        async with self._lock:
            db = self._db()
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")
