"""Dead letters can be read and replayed once; consumer lag per partition is right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import headers as H
from services.common.kafka.consumer_lag import sample_lag
from services.common.kafka.dlq import REPLAYED_FROM, replay, show
from services.common.settings import KafkaSettings
from tests.conftest import unique
from tests.kafka_tools import create_topics, produce, read_topic

pytestmark = pytest.mark.integration


async def test_show_and_replay_once(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    topic = unique("orders")
    await create_topics(kafka_settings.bootstrap_servers, [topic, topic + ".dlq"])
    hdrs = [
        (H.DLQ_REASON, b"validation failed: id: field required"),
        (H.DLQ_ORIGINAL_TOPIC, topic.encode()),
        (H.CORRELATION_ID, b"c-1"),
    ]
    await produce(
        kafka_settings.bootstrap_servers,
        topic + ".dlq",
        [b'{"a":1}', b'{"a":2}'],
        key=b"k",
        headers=hdrs,
    )
    letters = await show(kafka_settings, topic)
    assert [d.reason for d in letters] == ["validation failed: id: field required"] * 2
    assert await replay(kafka_settings, topic, limit=1) == 1
    assert await replay(kafka_settings, topic) == 1  # the rest, not the first again
    assert await replay(kafka_settings, topic) == 0
    back = await read_topic(kafka_settings.bootstrap_servers, topic, expect=2)
    assert [json.loads(r.value)["a"] for r in back] == [1, 2]
    h = H.as_dict(back[0].headers)
    assert H.DLQ_REASON not in h
    assert h[H.CORRELATION_ID] == "c-1"
    assert h[REPLAYED_FROM].startswith(topic + ".dlq:0:")
    assert back[0].key == b"k"


async def test_lag_from_highwater_and_committed(kafka_settings: KafkaSettings) -> None:
    topic = unique("lag")
    await create_topics(kafka_settings.bootstrap_servers, [topic], partitions=2)
    await produce(kafka_settings.bootstrap_servers, topic, [b"x"] * 5, partition=0)
    await produce(kafka_settings.bootstrap_servers, topic, [b"y"] * 3, partition=1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        group_id="lagtest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        while got < 8:
            batch = await consumer.getmany(timeout_ms=500)
            got += sum(len(v) for v in batch.values())
        await consumer.commit({tps[0]: 2, tps[1]: 3})
        lag = await sample_lag(consumer, "svc", "lagtest")
    finally:
        await consumer.stop()
    assert lag == {(topic, 0): 3, (topic, 1): 0}
