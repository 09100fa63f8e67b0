"""SQLite idempotency store: the embedded default (one file, WAL, several processes)."""

from __future__ import annotations

import json
import time
from typing import Any

from services.common.stores.base import SqliteBacked
from services.common.stores.idempotency import TABLE, Claim, ClaimLost, IdempotencyStore, new_owner

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    owner TEXT,
    expires_at REAL,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS {TABLE}_updated ON {TABLE} (state, updated_at);
"""

CLAIM = f"""
INSERT INTO {TABLE} (scope, key, fingerprint, state, owner, expires_at, created_at, updated_at)
VALUES (?, ?, ?, 'in_progress', ?, ?, ?, ?)
ON CONFLICT (scope, key) DO UPDATE
   SET owner = excluded.owner, expires_at = excluded.expires_at, updated_at = excluded.updated_at
 WHERE {TABLE}.state = 'in_progress' AND {TABLE}.expires_at < ?
   AND {TABLE}.fingerprint = excluded.fingerprint
"""
SELECT = f"SELECT state, fingerprint, owner, result FROM {TABLE} WHERE scope=? AND key=?"


class SqliteIdempotencyStore(SqliteBacked, IdempotencyStore):
    schema = SCHEMA

    async def claim(self, scope: str, key: str, fp: str, *, ttl_s: float | None = None) -> Claim:
        owner = new_owner()
        now = time.time()
        expires = now + (ttl_s if ttl_s is not None else self.settings.claim_ttl_s)
        # The upsert and the read are one decision, across processes too.
        async with self.db.transaction() as tx:
            await tx.execute(CLAIM, (scope, key, fp, owner, expires, now, now, now))
            row = await (await tx.execute(SELECT, (scope, key))).fetchone()
        assert row is not None
        return self._decide((row[0], row[1], row[2], row[3]), owner, fp)

    async def complete(self, scope: str, key: str, owner: str, result: dict[str, Any]) -> None:
        count, _ = await self.db.execute(
            f"UPDATE {TABLE} SET state='completed', result=?, updated_at=?, expires_at=NULL "
            "WHERE scope=? AND key=? AND owner=? AND state='in_progress'",
            (json.dumps(result, separators=(",", ":")), time.time(), scope, key, owner),
        )
        if count != 1:
            raise ClaimLost(f"claim on {scope}/{key} was lost before completion")

    async def release(self, scope: str, key: str, owner: str) -> None:
        await self.db.execute(
            f"DELETE FROM {TABLE} WHERE scope=? AND key=? AND owner=? AND state='in_progress'",
            (scope, key, owner),
        )

    async def get(self, scope: str, key: str) -> Claim | None:
        _, rows = await self.db.execute(SELECT, (scope, key))
        if not rows:
            return None
        row = rows[0]
        return self._decide((row[0], row[1], row[2], row[3]), "", row[1])

    async def purge(self, older_than_s: float | None = None) -> int:
        age = older_than_s if older_than_s is not None else self.settings.retention_days * 86400
        count, _ = await self.db.execute(
            f"DELETE FROM {TABLE} WHERE state='completed' AND updated_at < ?",
            (time.time() - age,),
        )
        return count
