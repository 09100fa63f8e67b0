"""SQLite state store: one file, WAL, shared by the processes of one machine."""

from __future__ import annotations

import json
import time
from typing import Any

from services.common.stores.base import SqliteBacked
from services.common.stores.state import TABLE, StateStore

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


class SqliteStateStore(SqliteBacked, StateStore):
    schema = SCHEMA

    async def get(self, scope: str, key: str) -> dict[str, Any] | None:
        _, rows = await self.db.execute(
            f"SELECT value FROM {TABLE} WHERE scope=? AND key=?", (scope, key)
        )
        if not rows:
            return None
        value: dict[str, Any] = json.loads(rows[0][0])
        return value

    async def put(self, scope: str, key: str, value: dict[str, Any]) -> None:
        await self.db.execute(
            f"INSERT INTO {TABLE} (scope, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (scope, key) DO UPDATE SET value=excluded.value, "
            "updated_at=excluded.updated_at",
            (scope, key, _dumps(value), time.time()),
        )

    async def insert(self, scope: str, key: str, value: dict[str, Any]) -> bool:
        count, _ = await self.db.execute(
            f"INSERT INTO {TABLE} (scope, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (scope, key) DO NOTHING",
            (scope, key, _dumps(value), time.time()),
        )
        return count == 1

    async def delete(self, scope: str, key: str) -> None:
        await self.db.execute(f"DELETE FROM {TABLE} WHERE scope=? AND key=?", (scope, key))
