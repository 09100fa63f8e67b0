"""Group commit in the application (services/common/stores/batching.py): concurrent calls
share a flush, a flush holds a key once and at most max_batch items, a failed flush fails
its callers only, and a lone call is flushed at once."""

from __future__ import annotations

import asyncio

import pytest

from services.common.stores.batching import Batcher


async def test_concurrent_calls_share_flushes_with_each_key_once() -> None:
    batches: list[list[tuple[str, int]]] = []

    async def flush(items: list[tuple[str, int]]) -> list[str]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [f"{k}:{n}" for k, n in items]

    batcher: Batcher[tuple[str, int], str] = Batcher(flush, key=lambda i: i[0], max_batch=10)
    items = [(f"k{n % 15}", n) for n in range(45)]  # every key three times
    results = await asyncio.gather(*(batcher.submit(i) for i in items))
    assert results == [f"{k}:{n}" for k, n in items]
    assert all(len(b) <= 10 and len({k for k, _ in b}) == len(b) for b in batches)
    assert len(batches) < len(items)  # shared
    assert sorted(i for b in batches for i in b) == sorted(items)


async def test_a_failed_flush_fails_its_callers_and_the_next_goes_on() -> None:
    async def flush(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 13 in items:
            raise ConnectionError("lost")
        return items

    batcher: Batcher[int, int] = Batcher(flush, key=lambda i: i, max_batch=4, concurrency=1)
    results = await asyncio.gather(
        *(batcher.submit(i) for i in range(10, 20)), return_exceptions=True
    )
    failed = [i for i, r in zip(range(10, 20), results, strict=True) if isinstance(r, Exception)]
    assert 13 in failed and len(failed) <= 4
    assert all(r == i for i, r in zip(range(10, 20), results, strict=True) if i not in failed)
    assert await batcher.submit(99) == 99  # a lone call, flushed at once


async def test_close_cancels_the_waiting_callers() -> None:
    release = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        await release.wait()
        return items

    batcher: Batcher[int, int] = Batcher(flush, key=lambda i: i)
    pending = asyncio.gather(*(batcher.submit(i) for i in range(3)))
    await asyncio.sleep(0.01)
    await batcher.close()
    with pytest.raises(asyncio.CancelledError):
        await pending


async def test_an_error_that_may_be_one_items_is_isolated_to_that_item() -> None:
    async def flush(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 13 in items:
            raise ValueError("bad item")
        return items

    batcher: Batcher[int, int] = Batcher(
        flush, key=lambda i: i, concurrency=1, isolate=lambda e: isinstance(e, ValueError)
    )
    results = await asyncio.gather(
        *(batcher.submit(i) for i in range(10, 20)), return_exceptions=True
    )
    assert [i for i, r in zip(range(10, 20), results, strict=True) if isinstance(r, Exception)] == [
        13
    ]
    assert all(r == i for i, r in zip(range(10, 20), results, strict=True) if i != 13)


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_caller_submitting_again_at_once_is_flushed(concurrency: int) -> None:
    """A caller woken by its result submits again before the flusher that answered it has
    left the batcher's books (its done-callback has not run yet): the new call still gets
    a flusher of its own. Counted as running, it waited for good."""

    async def flush(items: list[int]) -> list[int]:
        return items

    batcher: Batcher[int, int] = Batcher(flush, key=lambda i: i, concurrency=concurrency)
    for i in range(5):
        async with asyncio.timeout(2):  # not wait_for: its own task would hide the race
            assert await batcher.submit(i) == i
