"""What the broker holds, read the way every broker answers it right: per explicit
partition, high-water marks from a fetch response (never end_offsets / seek_to_end, which
the local broker gets wrong), committed offsets from each group's coordinator.

Used by `kopru top`, `kopru dlq list` and the services' dead-letter depth gauge.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import headers as H
from services.common.kafka.clients import new_consumer, stop_quietly
from services.common.observability.logging import get_logger
from services.common.observability.metrics import DLQ_DEPTH
from services.common.settings import KafkaSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class Newest:
    """The newest message of a topic: its timestamp (ms) and headers."""

    timestamp_ms: int
    headers: dict[str, str]


@dataclass(frozen=True)
class TopicOffsets:
    topic: str
    start: dict[int, int]  # partition -> log start offset
    end: dict[int, int]  # partition -> high-water mark

    @property
    def depth(self) -> int:
        return sum(max(0, self.end[p] - self.start.get(p, 0)) for p in self.end)

    @property
    def total(self) -> int:
        return sum(self.end.values())


def _probe(settings: KafkaSettings, group: str | None = None) -> AIOKafkaConsumer:
    # One small record per partition is enough to learn its high-water mark.
    return new_consumer(
        settings, group_id=group, max_partition_fetch_bytes=1024, fetch_max_wait_ms=100
    )


async def _start(consumer: AIOKafkaConsumer) -> None:
    """Start a probe; one that cannot start (the cluster is down) is closed at once, not
    left for the garbage collector ("Unclosed AIOKafkaConsumer" every DLQ-depth sample
    of a broker outage, with its connections)."""
    try:
        await consumer.start()
    except BaseException:
        await stop_quietly(consumer.stop())
        raise


async def _partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()
    return [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
    ]


async def offsets(
    settings: KafkaSettings, topics: list[str], *, timeout_s: float = 5.0
) -> dict[str, TopicOffsets]:
    """Log start and high-water mark of every partition of `topics` (those that exist)."""
    consumer = _probe(settings)
    await _start(consumer)
    try:
        tps = await _partitions(consumer, topics)
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        start = {tp: await consumer.position(tp) for tp in tps}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(consumer.highwater(tp) is not None for tp in tps):
                break
            await consumer.getmany(timeout_ms=200, max_records=len(tps))
            for tp in tps:  # stay at the start: only the fetch's high-water mark matters
                consumer.seek(tp, start[tp])
        out: dict[str, TopicOffsets] = {}
        for tp in tps:
            o = out.setdefault(tp.topic, TopicOffsets(tp.topic, {}, {}))
            o.start[tp.partition] = start[tp]
            o.end[tp.partition] = consumer.highwater(tp) or start[tp]
        return out
    finally:
        await stop_quietly(consumer.stop())


async def newest(
    settings: KafkaSettings, found: dict[str, TopicOffsets], *, timeout_s: float = 3.0
) -> dict[str, Newest]:
    """The newest message of each non-empty topic in `found` (by record timestamp)."""
    last = {
        TopicPartition(t, p): end - 1
        for t, o in found.items()
        for p, end in o.end.items()
        if end > o.start.get(p, 0)
    }
    if not last:
        return {}
    consumer = _probe(settings)
    await _start(consumer)
    try:
        consumer.assign(list(last))
        for tp, offset in last.items():
            consumer.seek(tp, offset)
        out: dict[str, Newest] = {}
        pending = set(last)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    if r.offset != last[tp]:
                        continue
                    pending.discard(tp)
                    seen = out.get(tp.topic)
                    if seen is None or r.timestamp > seen.timestamp_ms:
                        out[tp.topic] = Newest(r.timestamp, H.as_dict(list(r.headers or [])))
                if tp not in pending:
                    consumer.pause(tp)
        return out
    finally:
        await stop_quietly(consumer.stop())


async def committed(
    settings: KafkaSettings, group: str, found: dict[str, TopicOffsets]
) -> dict[str, int | None]:
    """Lag of `group` per topic: high-water mark minus its committed offset (a partition
    it never committed counts from the log start); None where the group never committed
    on any partition of the topic (a reader without commits, like the token cache)."""
    consumer = _probe(settings, group)
    await _start(consumer)
    try:
        lag: dict[str, int | None] = {}
        for t, o in found.items():
            total, seen = 0, False
            for p, end in o.end.items():
                c = await consumer.committed(TopicPartition(t, p))
                seen = seen or c is not None
                total += max(0, end - (c if c is not None else o.start.get(p, 0)))
            lag[t] = total if seen or not o.total else None
        return lag
    finally:
        await stop_quietly(consumer.stop())


async def dlq_depths(settings: KafkaSettings, dlqs: list[str]) -> dict[str, int]:
    return {t: o.depth for t, o in (await offsets(settings, dlqs)).items()}


async def sample_dlq_depth_loop(
    settings: KafkaSettings, dlqs: list[str], every_s: float = 30.0
) -> None:
    """Keep kopru_dlq_depth{topic} current for `dlqs` until cancelled."""
    while True:
        try:
            for topic, depth in (await dlq_depths(settings, dlqs)).items():
                DLQ_DEPTH.labels(topic).set(depth)
        except Exception as exc:  # metrics must never stop a service
            log.debug("dlq depth sample failed", error=str(exc))
        await asyncio.sleep(every_s)
