"""Group commit in the application: concurrent calls of one process share a statement.

Each caller hands in its item and waits for its own result. A flush sends whatever has
gathered (at most ``max_batch`` items, at most one per key: a statement never touches a
row twice) and hands each caller its result; up to ``concurrency`` flushes are in flight
at once (default one: a second flush started beside the first mostly carries a lone
call, and a statement with its commit costs the database about the same however few
rows it has). Calls that arrive while they are busy go in the next one; an idle store
flushes a lone call at once, with no timer and no added wait. A failed flush fails each
of its callers with the error, as the statement each would have sent alone; when
``isolate(error)`` says the error may be one item's (bad data, not a lost connection),
each item is flushed again alone, so one bad item fails only its own caller. Nothing is
answered before its flush returned: with a statement that commits, each result is
durable when its caller gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the item
R = TypeVar("R")


class Batcher(Generic[I, R]):
    def __init__(
        self,
        flush: Callable[[list[I]], Awaitable[list[R]]],
        key: Callable[[I], Hashable],
        *,
        max_batch: int = 64,
        concurrency: int = 1,
        isolate: Callable[[Exception], bool] = lambda _: False,
    ) -> None:
        self._flush = flush
        self._isolate = isolate
        self._key = key
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        # A flusher that has returned is done at once, but leaves ``_tasks`` only when its
        # done-callback runs: its caller may submit again before that, so the done ones
        # do not count (counted, the lone call would wait for a flusher that never comes).
        if sum(not task.done() for task in self._tasks) < self.concurrency:
            task = asyncio.create_task(self._run(), name="store-batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _next(self) -> list[tuple[I, asyncio.Future[R]]]:
        batch: list[tuple[I, asyncio.Future[R]]] = []
        later: list[tuple[I, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        for item, future in self._waiting:
            key = self._key(item)
            if len(batch) >= self.max_batch or key in keys:
                later.append((item, future))
            else:
                keys.add(key)
                batch.append((item, future))
        self._waiting = later
        return batch

    async def _run(self) -> None:
        while self._waiting:
            batch = self._next()
            try:
                results = await self._flush([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                if len(batch) > 1 and self._isolate(exc):
                    await self._one_by_one(batch)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        for item, future in batch:
            try:
                (result,) = await self._flush([item])
            except asyncio.CancelledError:
                for _, waiting in batch:
                    waiting.cancel()
                raise
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        """Stop flushing; callers still waiting are cancelled."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, future in self._waiting:
            future.cancel()
        self._waiting.clear()
