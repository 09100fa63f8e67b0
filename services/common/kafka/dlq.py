"""Look at a dead-letter topic and replay it.

`kopru dlq show TOPIC` lists what is in `TOPIC.dlq` with each message's reason.
`kopru dlq replay TOPIC` publishes dead letters back to the topic they came from, with
their original key, value and headers (the x-dlq-* headers removed, x-kopru-replayed-from
added), after the bug or the bad data was fixed. The replayer is a consumer group of its
own (`kopru-dlq-replay`), committing after each published message, so a replay that is
stopped halfway and run again never republishes what it already did.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import headers as H
from services.common.kafka.clients import new_consumer, new_producer
from services.common.settings import KafkaSettings

REPLAY_GROUP = "kopru-dlq-replay"
REPLAYED_FROM = "x-kopru-replayed-from"


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    raw_headers: list[tuple[str, bytes]]

    @property
    def reason(self) -> str:
        return self.headers.get(H.DLQ_REASON, "?")

    @property
    def original_topic(self) -> str:
        return self.headers.get(H.DLQ_ORIGINAL_TOPIC, "")

    @property
    def is_reference(self) -> bool:
        """The entry carries only a prefix of a record too large to copy (oversize.py)."""
        return self.headers.get(H.DLQ_REFERENCE) == "true"

    def reference_note(self) -> str:
        """Where the original is, for an entry that refers to it."""
        h = self.headers
        return (
            f"reference to {h.get(H.DLQ_ORIGINAL_TOPIC, '?')}"
            f"[{h.get(H.DLQ_ORIGINAL_PARTITION, '?')}]@{h.get(H.DLQ_ORIGINAL_OFFSET, '?')}: "
            f"{h.get(H.DLQ_ORIGINAL_SIZE, '?')} bytes, sha256 {h.get(H.DLQ_ORIGINAL_SHA256, '?')}, "
            f"first {h.get(H.DLQ_VALUE_PREFIX_BYTES, '0')} bytes kept "
            f"({h.get(H.DLQ_REFERENCE_WHY, '')})"
        )


def _consumer(settings: KafkaSettings, group: str | None) -> AIOKafkaConsumer:
    return new_consumer(
        settings,
        group_id=group,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )


async def _read(
    consumer: AIOKafkaConsumer, dlq: str, *, from_committed: bool, idle_s: float
) -> AsyncIterator[tuple[TopicPartition, Any]]:
    parts = consumer.partitions_for_topic(dlq)
    if parts is None:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(dlq) or set()
    tps = [TopicPartition(dlq, p) for p in sorted(parts)]
    if not tps:
        return
    consumer.assign(tps)
    for tp in tps:
        committed = await consumer.committed(tp) if from_committed else None
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    last = time.monotonic()
    while time.monotonic() - last < idle_s:
        batch = await consumer.getmany(timeout_ms=200)
        for tp, records in batch.items():
            for r in records:
                last = time.monotonic()
                yield tp, r


def _letter(r: Any) -> DeadLetter:
    raw = list(r.headers or [])
    return DeadLetter(r.partition, r.offset, r.key, r.value or b"", H.as_dict(raw), raw)


async def show(settings: KafkaSettings, topic: str, *, idle_s: float = 1.5) -> list[DeadLetter]:
    consumer = _consumer(settings, None)
    await consumer.start()
    try:
        return [
            _letter(r)
            async for _, r in _read(consumer, topic + ".dlq", from_committed=False, idle_s=idle_s)
        ]
    finally:
        await consumer.stop()


async def replay(
    settings: KafkaSettings,
    topic: str,
    *,
    limit: int | None = None,
    idle_s: float = 1.5,
    on_skip: Callable[[DeadLetter], None] | None = None,
) -> int:
    """Republish dead letters of `topic` not replayed before; return how many.

    A reference entry is never replayed (it holds only a prefix of the original): it is
    passed to `on_skip` and the replay moves past it."""
    consumer = _consumer(settings, REPLAY_GROUP)
    producer = new_producer(settings)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        async for tp, r in _read(consumer, topic + ".dlq", from_committed=True, idle_s=idle_s):
            letter = _letter(r)
            if letter.is_reference:
                if on_skip is not None:
                    on_skip(letter)
                await consumer.commit({tp: r.offset + 1})
                continue
            target = letter.original_topic or topic
            hdrs = [(k, v) for k, v in letter.raw_headers if not k.startswith("x-dlq-")]
            hdrs.append((REPLAYED_FROM, f"{tp.topic}:{r.partition}:{r.offset}".encode()))
            await producer.send_and_wait(target, letter.value, key=letter.key, headers=hdrs)
            await consumer.commit({tp: r.offset + 1})
            done += 1
            if limit is not None and done >= limit:
                break
    finally:
        await producer.stop()
        await consumer.stop()
    return done
