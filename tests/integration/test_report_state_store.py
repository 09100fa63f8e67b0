"""The report pipeline's state store on SQLite and PostgreSQL: same interface, same
behaviour (the senderReference registry, attempt counters and outcomes live here)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.auth_token.attempts import AttemptLog, password_fingerprint
from services.common.settings import StoreSettings
from services.common.stores.factory import open_state_store

pytestmark = pytest.mark.integration


async def test_put_get_insert_delete(store_settings: StoreSettings) -> None:
    s = open_state_store(store_settings)
    await s.open()
    try:
        key = uuid.uuid4().hex
        assert await s.get("scope", key) is None
        assert await s.insert("scope", key, {"phase": "reserved", "ref": "R1"})
        assert not await s.insert("scope", key, {"phase": "other"})
        assert await s.get("scope", key) == {"phase": "reserved", "ref": "R1"}
        await s.put("scope", key, {"phase": "done", "n": 2})
        assert await s.get("scope", key) == {"phase": "done", "n": 2}
        assert await s.get("other-scope", key) is None
        await s.delete("scope", key)
        assert await s.get("scope", key) is None
    finally:
        await s.close()


async def test_concurrent_insert_has_one_winner_across_connections(
    store_settings: StoreSettings,
) -> None:
    stores = [open_state_store(store_settings) for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        key = uuid.uuid4().hex
        wins = await asyncio.gather(
            *(s.insert("race", key, {"by": i}) for i, s in enumerate(stores))
        )
        assert sum(wins) == 1
    finally:
        for s in stores:
            await s.close()


async def test_attempt_log_survives_reopen(store_settings: StoreSettings) -> None:
    member = "M" + uuid.uuid4().hex[:6].upper()
    fp = password_fingerprint("k", "Wrong99!")
    s = open_state_store(store_settings)
    await s.open()
    await AttemptLog(s).before_attempt(member, "TIB991", fp)
    await AttemptLog(s).refused(member, "TIB991", fp, "0x00d30003")
    await s.close()
    s2 = open_state_store(store_settings)
    await s2.open()
    try:
        st = await AttemptLog(s2).get(member, "TIB991")
        assert st.is_blocked(fp, 2)
        assert not st.is_blocked(password_fingerprint("k", "Right99!"), 2)
    finally:
        await s2.close()
