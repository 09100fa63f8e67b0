"""Readiness judged from consumer progress: stuck partitions, failing commits, recovery."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from services.common.kafka.progress import ConsumerProgress

TP = TopicPartition("t", 0)


class FakeConsumer:
    def __init__(self) -> None:
        self.high = 10
        self.pos = 4
        self.paused_tps: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def paused(self) -> set[TopicPartition]:
        return self.paused_tps

    def highwater(self, tp: TopicPartition) -> int:
        return self.high

    async def position(self, tp: TopicPartition) -> int:
        return self.pos


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _problems(p: ConsumerProgress, c: Any) -> list[str]:
    return await p.problems([c])


async def test_lag_without_progress_is_stuck_until_a_commit_moves_it() -> None:
    clock, c = Clock(), FakeConsumer()
    p = ConsumerProgress(stall_after_s=60, clock=clock)
    assert await _problems(p, c) == []  # first sight starts the clock
    clock.now += 59
    assert await _problems(p, c) == []
    clock.now += 2
    [problem] = await _problems(p, c)
    assert "t[0] lag 6 without progress for 61 s" in problem
    p.commit_ok(TP, 5)  # one record handled: progress
    assert await _problems(p, c) == []
    clock.now += 61
    assert len(await _problems(p, c)) == 1  # stuck again at offset 5


async def test_a_paused_or_caught_up_partition_is_never_stuck() -> None:
    clock, c = Clock(), FakeConsumer()
    p = ConsumerProgress(stall_after_s=10, clock=clock)
    c.paused_tps = {TP}  # a delayed retry waiting for its due time
    for _ in range(5):
        clock.now += 30
        assert await _problems(p, c) == []
    c.paused_tps = set()
    c.high = c.pos = 4  # no lag
    for _ in range(5):
        clock.now += 30
        assert await _problems(p, c) == []


async def test_failing_commits_count_until_one_succeeds_or_they_age_out() -> None:
    clock, c = Clock(), FakeConsumer()
    c.high = c.pos
    p = ConsumerProgress(stall_after_s=60, error_window_s=30, clock=clock)
    p.commit_failed(RuntimeError("UnknownTopicOrPartitionError"))
    assert any("commit failing" in x for x in await _problems(p, c))
    p.commit_ok(TP, 4)
    assert await _problems(p, c) == []
    p.commit_failed(RuntimeError("again"))
    clock.now += 31  # no traffic since: no evidence either way any more
    assert await _problems(p, c) == []


async def test_a_revoked_partition_forgets_what_this_process_committed() -> None:
    clock, c = Clock(), FakeConsumer()
    p = ConsumerProgress(stall_after_s=60, clock=clock)
    p.commit_ok(TopicPartition("t", 3), 7)  # not assigned any more
    await _problems(p, c)
    assert TopicPartition("t", 3) not in p.committed


async def test_a_stop_that_meets_a_position_answer_still_cancels_the_watch() -> None:
    """The service's watch asks a consumer for its position with a short deadline. A
    cancellation (the service stopping) that lands as the answer arrives must cancel the
    watch; with 3.11's wait_for it returned the answer instead, the watch loop went on,
    and the stop that awaited it hung."""
    import asyncio

    from services.common.kafka.progress import _position

    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Consumer:
        async def position(self, tp: TopicPartition) -> int:
            return await answer

    watch = asyncio.create_task(_position(Consumer(), TopicPartition("t", 0)))
    await asyncio.sleep(0)  # it waits for the answer
    answer.set_result(7)
    watch.cancel()  # in the same moment
    for _ in range(5):
        await asyncio.sleep(0)
    assert watch.cancelled()
