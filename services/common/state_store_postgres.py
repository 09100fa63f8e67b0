"""PostgreSQL state store: shared by several replicas."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from services.common.state_store import TABLE, StateStore

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
"""


class PostgresStateStore(StateStore):
    pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        if self.pool is not None:
            return
        url = self.settings.url.replace("postgres://", "postgresql://", 1)
        self.pool = await asyncpg.create_pool(
            url, min_size=1, max_size=self.settings.pool_size, command_timeout=30
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(4242005)")
            await conn.execute(SCHEMA)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("state store is not open")
        return self.pool

    async def ping(self) -> None:
        await self._pool().fetchval("SELECT 1")

    async def get(self, scope: str, key: str) -> dict[str, Any] | None:
        raw = await self._pool().fetchval(
            f"SELECT value FROM {TABLE} WHERE scope=$1 AND key=$2", scope, key
        )
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def put(self, scope: str, key: str, value: dict[str, Any]) -> None:
        await self._pool().execute(
            f"INSERT INTO {TABLE} (scope, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (scope, key) DO UPDATE SET value=excluded.value, updated_at=now()",
            scope,
            key,
            json.dumps(value, separators=(",", ":")),
        )

    async def insert(self, scope: str, key: str, value: dict[str, Any]) -> bool:
        status = await self._pool().execute(
            f"INSERT INTO {TABLE} (scope, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (scope, key) DO NOTHING",
            scope,
            key,
            json.dumps(value, separators=(",", ":")),
        )
        return bool(status == "INSERT 0 1")

    async def delete(self, scope: str, key: str) -> None:
        await self._pool().execute(f"DELETE FROM {TABLE} WHERE scope=$1 AND key=$2", scope, key)
