"""`kopru report request` (and every command that publishes as upstream does,
services/cli/publishing.py) against a broker without the catalogue, and without a broker:
one line that says what to do, exit 2, no traceback and no topic made; with the catalogue,
the event is on its topic."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import REPORTS_REQUESTED
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.local_broker import free_port
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings

pytestmark = [pytest.mark.integration, pytest.mark.engines("tansu", "kafka")]


async def kopru(bootstrap: str, *args: str) -> tuple[int, str, float]:
    env = {**os.environ, "KOPRU_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), time.monotonic() - t0


REQUEST = ("report", "request", "--date", "2025-05-05", "--request-id", "cli-topic", "--no-wait")


async def test_publishing_without_the_catalogue_says_so_and_creates_nothing(
    kafka_settings: KafkaSettings,
) -> None:
    code, out, took = await kopru(kafka_settings.bootstrap_servers, *REQUEST)
    assert code == 2, out
    assert f"topic {REPORTS_REQUESTED.name} does not exist" in out and "kopru broker" in out
    assert "Traceback" not in out
    assert took < kafka_settings.request_timeout_ms / 1000  # not after the request timeout

    await create_topics(kafka_settings, plan(kafka_settings), with_config=False)
    await wait_for_leaders(kafka_settings.bootstrap_servers, [REPORTS_REQUESTED.name])
    code, out, _ = await kopru(kafka_settings.bootstrap_servers, *REQUEST)
    assert code == 0, out
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # all topics (start asks for none)
        tps = [
            TopicPartition(REPORTS_REQUESTED.name, p)
            for p in consumer.partitions_for_topic(REPORTS_REQUESTED.name) or set()
        ]
        assert len(tps) == REPORTS_REQUESTED.partitions
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        batches = await consumer.getmany(*tps, timeout_ms=5000)
        values = [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    assert len(values) == 1 and b'"request_id":"cli-topic"' in values[0]


async def test_publishing_without_a_broker_says_so() -> None:
    code, out, _ = await kopru(f"127.0.0.1:{free_port()}", *REQUEST)
    assert code == 2, out
    assert "no Kafka broker answers at 127.0.0.1:" in out and "Traceback" not in out
