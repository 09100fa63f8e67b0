"""The outbox relay's producer builds its own record batches (one open batch per
partition, sent when full and at the end): against a real broker, every stored event
arrives once, as stored, on the partition Kafka's default partitioner gives its token, in
the rows' order within a partition, with its type header; a row without an event is
refused alone."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY

from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings
from services.common.stores.payments import CONFIRMED, FAILED, PaymentRow
from services.payment_notifier.outbox_producer import EVENT_TYPES, TOPIC, OutboxProducer

pytestmark = pytest.mark.integration


def row(token: str, state: str, event: str | None) -> PaymentRow:
    return PaymentRow(token, None, state, "fp", "{}", event, False, "o", "confirmation", None, 0)


def published(event_type: str) -> float:
    labels = {"topic": TOPIC, "event_type": event_type}
    return REGISTRY.get_sample_value("kopru_events_published_total", labels) or 0.0


async def read_all(bootstrap: str, expect: int, timeout_s: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []  # aiokafka ConsumerRecord
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
        # A little longer: a second copy of anything would show now.
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            records += batch
    finally:
        await consumer.stop()
    return records


@pytest.mark.engines("kafka", "tansu")
async def test_batched_events_arrive_once_as_stored_on_their_partitions_in_order(
    kafka_settings: KafkaSettings,
) -> None:
    topics = [t for t in plan(kafka_settings) if t.name == TOPIC]
    await create_topics(kafka_settings, topics, with_config=False)
    await wait_for_leaders(kafka_settings.bootstrap_servers, [TOPIC])
    # ~2 KB events, 400 of them: several full batches (16 KB) per partition.
    rows = [
        row(
            f"tok-{i:04d}",
            CONFIRMED if i % 3 else FAILED,
            json.dumps({"token": f"tok-{i:04d}", "n": i, "pad": "x" * 2000}),
        )
        for i in range(400)
    ]
    rows.insert(7, row("tok-none", CONFIRMED, None))
    before = {t: published(t) for t in EVENT_TYPES.values()}
    producer = OutboxProducer(kafka_settings, client_id="test")
    await producer.start()
    try:
        acks = await producer.enqueue_many(rows)
        assert isinstance(acks[7], ValueError) and "tok-none" in str(acks[7])
        futures = [a for i, a in enumerate(acks) if i != 7]
        assert not any(isinstance(a, Exception) for a in futures)
        await asyncio.gather(*futures)  # type: ignore[arg-type]
        assert len({id(a) for a in futures}) < len(futures) / 5  # rows share batches
    finally:
        await producer.stop()

    records = await read_all(kafka_settings.bootstrap_servers, expect=400)
    sent = [r for r in rows if r.event is not None]
    assert len(records) == len(sent)
    by_token = {(r.key or b"").decode(): r for r in records}
    assert len(by_token) == len(sent)
    partitions = list(range(topics[0].partitions))
    default = DefaultPartitioner()
    for stored in sent:
        record = by_token[stored.token]
        assert record.value == (stored.event or "").encode()
        assert dict(record.headers)["x-event-type"] == EVENT_TYPES[stored.state].encode()
        key = stored.token.encode()
        assert record.partition == default(key, partitions, partitions)
    for p in partitions:
        in_partition = sorted((r for r in records if r.partition == p), key=lambda r: r.offset)
        tokens = [(r.key or b"").decode() for r in in_partition]
        assert tokens == sorted(tokens), f"partition {p} out of the rows' order"
    for event_type, count in before.items():
        expected = sum(1 for r in sent if EVENT_TYPES[r.state] == event_type)
        assert published(event_type) - count == expected
