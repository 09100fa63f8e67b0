"""PostgreSQL state store: shared by several replicas."""

from __future__ import annotations

import json
from typing import Any

from services.common.stores.base import PostgresBacked
from services.common.stores.state import TABLE, StateStore

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
"""


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


class PostgresStateStore(PostgresBacked, StateStore):
    schema = SCHEMA

    async def get(self, scope: str, key: str) -> dict[str, Any] | None:
        raw = await self.db.pool.fetchval(
            f"SELECT value FROM {TABLE} WHERE scope=$1 AND key=$2", scope, key
        )
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def put(self, scope: str, key: str, value: dict[str, Any]) -> None:
        await self.db.pool.execute(
            f"INSERT INTO {TABLE} (scope, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (scope, key) DO UPDATE SET value=excluded.value, updated_at=now()",
            scope,
            key,
            _dumps(value),
        )

    async def insert(self, scope: str, key: str, value: dict[str, Any]) -> bool:
        status = await self.db.pool.execute(
            f"INSERT INTO {TABLE} (scope, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (scope, key) DO NOTHING",
            scope,
            key,
            _dumps(value),
        )
        return bool(status == "INSERT 0 1")

    async def delete(self, scope: str, key: str) -> None:
        await self.db.pool.execute(f"DELETE FROM {TABLE} WHERE scope=$1 AND key=$2", scope, key)
