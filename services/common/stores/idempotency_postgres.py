"""PostgreSQL idempotency store: shared by several replicas of a service."""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg

from services.common.stores.base import PostgresBacked
from services.common.stores.idempotency import (
    TABLE,
    Claim,
    ClaimLost,
    IdempotencyStore,
    new_owner,
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    owner TEXT,
    expires_at DOUBLE PRECISION,
    result TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS {TABLE}_updated ON {TABLE} (state, updated_at);
"""

# One statement: the database decides who holds the claim. The CTE's row is the
# winner's; when nothing was inserted or taken over, the existing row is read.
CLAIM = f"""
WITH up AS (
    INSERT INTO {TABLE} AS t
        (scope, key, fingerprint, state, owner, expires_at, created_at, updated_at)
    VALUES ($1, $2, $3, 'in_progress', $4, $5, $6, $6)
    ON CONFLICT (scope, key) DO UPDATE
       SET owner = excluded.owner, expires_at = excluded.expires_at,
           updated_at = excluded.updated_at
     WHERE t.state = 'in_progress' AND t.expires_at < $6 AND t.fingerprint = excluded.fingerprint
    RETURNING state, fingerprint, owner, result
)
SELECT state, fingerprint, owner, result FROM up
UNION ALL
SELECT state, fingerprint, owner, result FROM {TABLE}
 WHERE scope = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM up)
"""


class PostgresIdempotencyStore(PostgresBacked, IdempotencyStore):
    schema = SCHEMA

    def _pool(self) -> asyncpg.Pool:
        return self.db.pool

    async def claim(self, scope: str, key: str, fp: str, *, ttl_s: float | None = None) -> Claim:
        owner = new_owner()
        now = time.time()
        expires = now + (ttl_s if ttl_s is not None else self.settings.claim_ttl_s)
        row = await self._pool().fetchrow(CLAIM, scope, key, fp, owner, expires, now)
        if row is None:
            # The conflicting row was committed by a concurrent claim after this
            # statement's snapshot: ON CONFLICT saw it, the SELECT could not. Read it now.
            row = await self._pool().fetchrow(
                f"SELECT state, fingerprint, owner, result FROM {TABLE} WHERE scope=$1 AND key=$2",
                scope,
                key,
            )
        if row is None:  # released in between: try once more from the start
            return await self.claim(scope, key, fp, ttl_s=ttl_s)
        return self._decide((row[0], row[1], row[2], row[3]), owner, fp)

    async def complete(self, scope: str, key: str, owner: str, result: dict[str, Any]) -> None:
        status = await self._pool().execute(
            f"UPDATE {TABLE} SET state='completed', result=$1, updated_at=$2, expires_at=NULL "
            "WHERE scope=$3 AND key=$4 AND owner=$5 AND state='in_progress'",
            json.dumps(result, separators=(",", ":")),
            time.time(),
            scope,
            key,
            owner,
        )
        if status != "UPDATE 1":
            raise ClaimLost(f"claim on {scope}/{key} was lost before completion")

    async def release(self, scope: str, key: str, owner: str) -> None:
        await self._pool().execute(
            f"DELETE FROM {TABLE} WHERE scope=$1 AND key=$2 AND owner=$3 AND state='in_progress'",
            scope,
            key,
            owner,
        )

    async def get(self, scope: str, key: str) -> Claim | None:
        row = await self._pool().fetchrow(
            f"SELECT state, fingerprint, owner, result FROM {TABLE} WHERE scope=$1 AND key=$2",
            scope,
            key,
        )
        if row is None:
            return None
        return self._decide((row[0], row[1], row[2], row[3]), "", row[1])

    async def purge(self, older_than_s: float | None = None) -> int:
        age = older_than_s if older_than_s is not None else self.settings.retention_days * 86400
        status = await self._pool().execute(
            f"DELETE FROM {TABLE} WHERE state='completed' AND updated_at < $1",
            time.time() - age,
        )
        return int(status.split()[-1])
