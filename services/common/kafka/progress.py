"""What readiness needs to know about a service's consumers, and the check itself.

`/readyz` must not say ready while the pipeline is stalled (ARCHITECTURE, "Health
tells the truth"). Three things make a consumer not ready:
- its last commit failed, in the last `error_window_s`, and none has succeeded since
  (e.g. the broker lost the topic after a restart: UnknownTopicOrPartition on every
  commit);
- a record could not be settled (its retry or dead letter could not be written) in
  the last `error_window_s` and is being read again;
- a partition has lag (high-water mark above what this group committed), is not
  paused on purpose (a delayed retry waiting for its due time), and its committed
  offset has not moved for `stall_after_s`.
Each recovers by itself: the next successful commit clears the first two, progress
on the partition clears the third.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from services.common.observability.logging import get_logger

log = get_logger(__name__)


@dataclass
class _Mark:
    offset: int
    since: float


@dataclass
class ConsumerProgress:
    stall_after_s: float = 60.0
    # A failed commit or settle counts this long (no traffic, no new evidence either way).
    error_window_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    commit_error: str | None = None
    commit_error_at: float = 0.0
    settle_error: str | None = None
    settle_error_at: float = 0.0
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    _marks: dict[TopicPartition, _Mark] = field(default_factory=dict)

    # ---------------------------------------------------------------- what delivery tells
    def commit_ok(self, tp: TopicPartition, offset: int) -> None:
        self.committed[tp] = offset
        self.commit_error = None
        self.settle_error = None

    def commit_failed(self, error: BaseException) -> None:
        self.commit_error = f"{type(error).__name__}: {error}"[:300]
        self.commit_error_at = self.clock()

    def settle_failed(self, error: BaseException) -> None:
        self.settle_error = f"{type(error).__name__}: {error}"[:300]
        self.settle_error_at = self.clock()

    # ---------------------------------------------------------------- what readiness asks
    async def stuck(self, consumers: Iterable[Any]) -> list[str]:
        """Partitions with lag that made no progress for stall_after_s."""
        now = self.clock()
        out: list[str] = []
        seen: set[TopicPartition] = set()
        held: set[TopicPartition] = set()
        for consumer in consumers:
            try:
                assigned = set(consumer.assignment())
                held |= assigned
                paused = set(consumer.paused())
            except Exception as exc:  # a consumer stopping or not started: nothing to judge
                log.debug("consumer not judged", error=str(exc))
                continue
            for tp in assigned:
                high = consumer.highwater(tp)
                if high is None:
                    continue
                seen.add(tp)
                mark = self._marks.get(tp)
                # Progress is what this group committed; before its first commit here,
                # the position where this process started reading that partition.
                point = self.committed.get(tp)
                if point is None:
                    point = mark.offset if mark is not None else await _position(consumer, tp)
                if point is None:
                    continue
                if mark is None or mark.offset != point or tp in paused or high <= point:
                    self._marks[tp] = _Mark(point, now)
                    continue
                if now - mark.since >= self.stall_after_s:
                    out.append(
                        f"{tp.topic}[{tp.partition}] lag {high - point} "
                        f"without progress for {int(now - mark.since)} s"
                    )
        for tp in set(self._marks) - seen:
            del self._marks[tp]
        for tp in set(self.committed) - held:  # revoked: another replica moves it on
            del self.committed[tp]
        return sorted(out)

    async def problems(self, consumers: Iterable[Any]) -> list[str]:
        found = []
        now = self.clock()
        if self.commit_error and now - self.commit_error_at < self.error_window_s:
            found.append(f"commit failing: {self.commit_error}")
        if self.settle_error and now - self.settle_error_at < self.error_window_s:
            found.append(f"a record cannot be settled: {self.settle_error}")
        found += await self.stuck(consumers)
        return found


async def _position(consumer: Any, tp: TopicPartition) -> int | None:
    """Where the consumer reads next, or None while it has no valid position."""
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for returns the result when a
        # cancellation meets the inner call's end, swallowing the cancellation; the
        # service's watch loop then outlived its stop (a CI run's stop hung on it).
        async with asyncio.timeout(0.05):
            return int(await consumer.position(tp))
    except Exception:
        return None
