"""The idempotency store, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from services.common.errors import InvalidMessage, RetryLater
from services.common.settings import StoreSettings
from services.common.stores.factory import open_store
from services.common.stores.idempotency import (
    ClaimLost,
    ClaimState,
    IdempotencyStore,
    fingerprint,
    run_once,
)

pytestmark = pytest.mark.integration


async def test_first_claim_wins_then_replays(store: IdempotencyStore) -> None:
    fp = fingerprint(b"payload")
    first = await store.claim("s", "k1", fp)
    assert first.state is ClaimState.ACQUIRED
    assert (await store.claim("s", "k1", fp)).state is ClaimState.IN_PROGRESS
    assert first.owner is not None
    await store.complete("s", "k1", first.owner, {"ref_id": "R1"})
    again = await store.claim("s", "k1", fp)
    assert again.state is ClaimState.COMPLETED
    assert again.result == {"ref_id": "R1"}


async def test_same_key_other_payload_is_a_conflict(store: IdempotencyStore) -> None:
    first = await store.claim("s", "k2", fingerprint(b"amount=10"))
    assert first.owner
    await store.complete("s", "k2", first.owner, {})
    assert (await store.claim("s", "k2", fingerprint(b"amount=11"))).state is ClaimState.CONFLICT
    # Also while still in progress.
    await store.claim("s", "k3", fingerprint(b"a"))
    assert (await store.claim("s", "k3", fingerprint(b"b"))).state is ClaimState.CONFLICT


async def test_expired_claim_can_be_retaken_and_late_owner_loses(
    store: IdempotencyStore,
) -> None:
    fp = fingerprint(b"x")
    crashed = await store.claim("s", "k4", fp, ttl_s=0.2)
    assert crashed.state is ClaimState.ACQUIRED and crashed.owner
    await asyncio.sleep(0.3)
    retaken = await store.claim("s", "k4", fp)
    assert retaken.state is ClaimState.ACQUIRED and retaken.owner != crashed.owner
    with pytest.raises(ClaimLost):
        await store.complete("s", "k4", crashed.owner, {"late": True})
    assert retaken.owner
    await store.complete("s", "k4", retaken.owner, {"late": False})
    got = await store.get("s", "k4")
    assert got is not None and got.result == {"late": False}


async def test_release_lets_the_next_attempt_in(store: IdempotencyStore) -> None:
    fp = fingerprint(b"y")
    c = await store.claim("s", "k5", fp)
    assert c.owner
    await store.release("s", "k5", c.owner)
    assert (await store.claim("s", "k5", fp)).state is ClaimState.ACQUIRED


async def test_scopes_are_separate(store: IdempotencyStore) -> None:
    fp = fingerprint(b"z")
    assert (await store.claim("a", "same", fp)).state is ClaimState.ACQUIRED
    assert (await store.claim("b", "same", fp)).state is ClaimState.ACQUIRED


async def test_concurrent_claims_have_exactly_one_winner(
    store_settings: StoreSettings,
) -> None:
    stores = [open_store(store_settings) for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        fp = fingerprint(b"race")
        results = await asyncio.gather(
            *(stores[i % 4].claim("race", f"k{n}", fp) for n in range(20) for i in range(10))
        )
    finally:
        for s in stores:
            await s.close()
    by_key: dict[int, list[ClaimState]] = {}
    for idx, r in enumerate(results):
        by_key.setdefault(idx // 10, []).append(r.state)
    for states in by_key.values():
        assert states.count(ClaimState.ACQUIRED) == 1
        assert states.count(ClaimState.IN_PROGRESS) == 9


async def test_concurrent_claims_across_processes(
    store_settings: StoreSettings, tmp_path: object
) -> None:
    """Several OS processes race for the same keys: one winner per key."""
    script = (
        "import asyncio,sys\n"
        "from services.common.stores.factory import open_store\n"
        "from services.common.stores.idempotency import ClaimState, fingerprint\n"
        "from services.common.settings import StoreSettings\n"
        "async def main():\n"
        "    s = open_store(StoreSettings(url=sys.argv[1])); await s.open()\n"
        "    won = 0\n"
        "    for n in range(30):\n"
        "        c = await s.claim('proc', f'k{n}', fingerprint(b'p'))\n"
        "        won += c.state is ClaimState.ACQUIRED\n"
        "    await s.close(); print(won)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, store_settings.url], stdout=subprocess.PIPE, env=env
        )
        for _ in range(3)
    ]
    wins = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(wins) == 30


async def test_run_once_runs_effect_once_and_replays(store: IdempotencyStore) -> None:
    calls = 0

    async def effect() -> dict[str, object]:
        nonlocal calls
        calls += 1
        return {"n": calls}

    assert await run_once(store, "once", "a", b"p", effect) == {"n": 1}
    assert await run_once(store, "once", "a", b"p", effect) == {"n": 1}
    assert calls == 1
    with pytest.raises(InvalidMessage):
        await run_once(store, "once", "a", b"other", effect)


async def test_run_once_failed_effect_releases(store: IdempotencyStore) -> None:
    async def boom() -> dict[str, object]:
        raise ConnectionError("MKK down")

    with pytest.raises(ConnectionError):
        await run_once(store, "once", "b", b"p", boom)

    async def ok() -> dict[str, object]:
        return {"ok": True}

    assert await run_once(store, "once", "b", b"p", ok) == {"ok": True}


async def test_run_once_busy_key_retries_later(store: IdempotencyStore) -> None:
    await store.claim("once", "c", fingerprint(b"p"))

    async def ok() -> dict[str, object]:
        return {}

    with pytest.raises(RetryLater):
        await run_once(store, "once", "c", b"p", ok)


async def test_purge_keeps_recent_and_in_progress(store: IdempotencyStore) -> None:
    fp = fingerprint(b"q")
    done = await store.claim("p", "old", fp)
    assert done.owner
    await store.complete("p", "old", done.owner, {})
    await store.claim("p", "live", fp)
    time.sleep(0.05)
    assert await store.purge(older_than_s=3600) == 0
    assert await store.purge(older_than_s=0.01) == 1
    assert await store.get("p", "old") is None
    assert await store.get("p", "live") is not None
