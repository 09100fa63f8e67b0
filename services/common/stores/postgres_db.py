"""A PostgreSQL connection pool for one store, with its schema created on open.

Several replicas may open at once: the schema statements run under a transaction-level
advisory lock, so concurrent CREATE TABLE IF NOT EXISTS never collide.
"""

from __future__ import annotations

import zlib

import asyncpg


async def _reset(conn: asyncpg.Connection) -> None:
    """On release to the pool. asyncpg's default resets session state (advisory locks,
    listeners, SET values) with one more round trip per query; the stores keep no session
    state (their locks are transaction-scoped), so only an open transaction is ended."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresDb:
    def __init__(self, url: str, schema: str, *, pool_size: int = 10) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.schema = schema
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self.pool_size, command_timeout=30, reset=_reset
        )
        lock_id = zlib.crc32(self.schema.encode())
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
            await conn.execute(self.schema)
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")
