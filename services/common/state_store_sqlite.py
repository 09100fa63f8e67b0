"""SQLite state store: one file, WAL, shared by the processes of one machine."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiosqlite

from services.common.state_store import TABLE, StateStore

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


class SqliteStateStore(StateStore):
    db: aiosqlite.Connection | None = None

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
            raise RuntimeError("state store is not open")
        return self.db

    async def ping(self) -> None:
        await (await self._conn().execute("SELECT 1")).fetchone()

    async def get(self, scope: str, key: str) -> dict[str, Any] | None:
        cur = await self._conn().execute(
            f"SELECT value FROM {TABLE} WHERE scope=? AND key=?", (scope, key)
        )
        row = await cur.fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    async def put(self, scope: str, key: str, value: dict[str, Any]) -> None:
        await self._conn().execute(
            f"INSERT INTO {TABLE} (scope, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (scope, key) DO UPDATE SET value=excluded.value, "
            "updated_at=excluded.updated_at",
            (scope, key, json.dumps(value, separators=(",", ":")), time.time()),
        )

    async def insert(self, scope: str, key: str, value: dict[str, Any]) -> bool:
        cur = await self._conn().execute(
            f"INSERT INTO {TABLE} (scope, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (scope, key) DO NOTHING",
            (scope, key, json.dumps(value, separators=(",", ":")), time.time()),
        )
        return cur.rowcount == 1

    async def delete(self, scope: str, key: str) -> None:
        await self._conn().execute(f"DELETE FROM {TABLE} WHERE scope=? AND key=?", (scope, key))
