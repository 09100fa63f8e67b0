"""Delivery over the real broker: dead letters, redelivery after a crash, delayed retries."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.common.kafka import headers as H
from services.common.kafka.retry_tiers import retry_topics
from services.common.settings import BaseServiceSettings, KafkaSettings, StoreSettings
from services.common.stores.factory import open_store
from tests.broker_pool import Broker
from tests.conftest import broker_settings, engine_env, unique
from tests.integration.apps.echo_service import Ping, build
from tests.kafka_tools import create_topics, produce, read_topic

pytestmark = pytest.mark.integration


async def _topics(settings: KafkaSettings, in_topic: str, out_topic: str, parts: int = 1) -> None:
    await create_topics(
        settings.bootstrap_servers,
        [
            in_topic,
            out_topic,
            in_topic + ".dlq",
            *retry_topics(in_topic, "echo", settings.retry_tiers_s),
        ],
        partitions=parts,
    )


def _settings(kafka: KafkaSettings, tmp_path: Path) -> BaseServiceSettings:
    return BaseServiceSettings(
        kafka=kafka, store=StoreSettings(url=f"sqlite:///{tmp_path}/echo.db")
    )


async def test_malformed_event_goes_to_dlq_and_next_is_processed(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    in_t, out_t = unique("in"), unique("out")
    await _topics(kafka_settings, in_t, out_t)
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    try:
        bad = b'{"id": 17, "action": "nope"'  # not even JSON
        wrong = b'{"id": "w1", "action": "dance"}'  # JSON, fails validation
        await produce(kafka_settings.bootstrap_servers, in_t, [bad, wrong], key=b"k1")
        await produce(
            kafka_settings.bootstrap_servers, in_t, [Ping(id="good-1").model_dump_json().encode()]
        )
        pongs = await read_topic(kafka_settings.bootstrap_servers, out_t, expect=1)
        dlq = await read_topic(kafka_settings.bootstrap_servers, in_t + ".dlq", expect=2)
    finally:
        await service.stop()
    assert [json.loads(p.value)["id"] for p in pongs] == ["good-1"]
    assert len(dlq) == 2
    assert [d.value for d in dlq] == [bad, wrong]  # original bytes unchanged
    assert all(d.key == b"k1" for d in dlq)
    for d, offset in zip(dlq, (0, 1), strict=True):
        h = H.as_dict(d.headers)
        assert h[H.DLQ_ORIGINAL_TOPIC] == in_t
        assert h[H.DLQ_ORIGINAL_PARTITION] == "0"
        assert h[H.DLQ_ORIGINAL_OFFSET] == str(offset)
        assert h[H.DLQ_SERVICE] == "echo"
        assert "validation failed" in h[H.DLQ_REASON] or "JSON" in h[H.DLQ_REASON]
    assert "action" in H.as_dict(dlq[1].headers)[H.DLQ_REASON]


async def test_bug_in_handler_goes_to_dlq_with_error_type(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    in_t, out_t = unique("in"), unique("out")
    await _topics(kafka_settings, in_t, out_t)
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    try:
        await produce(
            kafka_settings.bootstrap_servers,
            in_t,
            [
                Ping(id="b1", action="boom").model_dump_json().encode(),
                Ping(id="g2").model_dump_json().encode(),
            ],
        )
        pongs = await read_topic(kafka_settings.bootstrap_servers, out_t, expect=1)
        dlq = await read_topic(kafka_settings.bootstrap_servers, in_t + ".dlq", expect=1)
    finally:
        await service.stop()
    assert [json.loads(p.value)["id"] for p in pongs] == ["g2"]
    h = H.as_dict(dlq[0].headers)
    assert h[H.DLQ_ERROR_TYPE] == "RuntimeError"
    assert h[H.DLQ_REASON] == "RuntimeError: boom"


async def test_delayed_retry_not_before_due_and_survives_restart(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    in_t, out_t = unique("in"), unique("out")
    await _topics(kafka_settings, in_t, out_t)
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    delay = 4.0
    sent_at = time.time()
    await produce(
        kafka_settings.bootstrap_servers,
        in_t,
        [Ping(id="r1", action="retry", delay_s=delay).model_dump_json().encode()],
    )
    # Let it be consumed and parked on the retry tier, then stop the consumer.
    retry_t = retry_topics(in_t, "echo", kafka_settings.retry_tiers_s)[-1]
    parked = await read_topic(kafka_settings.bootstrap_servers, retry_t, expect=1, timeout_s=10)
    assert len(parked) == 1
    await service.stop()
    # A new consumer (the restart) picks the parked message up and waits for its due time.
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    try:
        pongs = await read_topic(kafka_settings.bootstrap_servers, out_t, expect=1, timeout_s=20)
    finally:
        await service.stop()
    assert len(pongs) == 1
    handled_at = json.loads(pongs[0].value)["handled_at"]
    assert handled_at >= sent_at + delay, "handled before its due time"
    assert handled_at < sent_at + delay + 10
    h = H.as_dict(parked[0].headers)
    assert h[H.ATTEMPT] == "1"
    assert h[H.ORIGINAL_TOPIC] == in_t


async def test_waiting_partition_does_not_hold_up_another(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    in_t, out_t = unique("in"), unique("out")
    await _topics(kafka_settings, in_t, out_t, parts=2)
    settings = _settings(kafka_settings, tmp_path)
    service = build(settings, open_store(settings.store), in_t, out_t)
    await service.start()
    try:
        # Partition 0: a message that waits 5 s on the retry tier.
        await produce(
            kafka_settings.bootstrap_servers,
            in_t,
            [Ping(id="slow", action="retry", delay_s=5.0).model_dump_json().encode()],
            partition=0,
        )
        await asyncio.sleep(1.0)
        t0 = time.time()
        # Partition 1 of the main topic, and then a second, later message of partition 0
        # of the main topic: both flow while the retry is waiting.
        await produce(
            kafka_settings.bootstrap_servers,
            in_t,
            [Ping(id=f"fast-{i}").model_dump_json().encode() for i in range(5)],
            partition=1,
        )
        pongs = await read_topic(kafka_settings.bootstrap_servers, out_t, expect=6, timeout_s=20)
    finally:
        await service.stop()
    by_id = {json.loads(p.value)["id"]: json.loads(p.value)["handled_at"] for p in pongs}
    assert set(by_id) == {"slow", *(f"fast-{i}" for i in range(5))}
    assert max(by_id[f"fast-{i}"] for i in range(5)) < by_id["slow"]
    assert max(by_id[f"fast-{i}"] for i in range(5)) - t0 < 3.0


def _run_echo(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.apps.echo_service"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_killed_before_commit_redelivers_and_handles_once(
    fresh_broker: Broker, tmp_path: Path
) -> None:
    kafka = broker_settings(fresh_broker)
    in_t, out_t = unique("in"), unique("out")
    await _topics(kafka, in_t, out_t)
    effects = tmp_path / "effects.log"
    env = {
        **engine_env(fresh_broker),
        "KOPRU_STORE__URL": f"sqlite:///{tmp_path}/echo.db",
        "KOPRU_HTTP__PORT": "0",
        "ECHO_IN": in_t,
        "ECHO_OUT": out_t,
        "ECHO_EFFECTS": str(effects),
    }
    await produce(kafka.bootstrap_servers, in_t, [Ping(id="once").model_dump_json().encode()])
    first = _run_echo({**env, "ECHO_CRASH_AFTER_EFFECT": "1"})
    code = await asyncio.to_thread(first.wait, 60)
    assert code == 9, first.stderr.read().decode() if first.stderr else code
    assert effects.read_text().split() == ["once"]
    second = _run_echo(env)
    try:
        # The redelivered message is handled again: the stored answer is replayed, the
        # effect is not repeated; the second process commits it.
        deadline = time.time() + 30
        committed = False
        while time.time() < deadline and not committed:
            committed = await _committed(kafka.bootstrap_servers, "echo", in_t) == 1
            await asyncio.sleep(0.3)
    finally:
        second.terminate()
        await asyncio.to_thread(second.wait, 30)
    assert committed
    assert effects.read_text().split() == ["once"]
    pongs = await read_topic(kafka.bootstrap_servers, out_t, expect=1)
    assert [json.loads(p.value)["id"] for p in pongs] == ["once"]


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    """The group's committed offset of partition 0, asked for that explicit partition."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(TopicPartition(topic, 0))
        return committed
    finally:
        await consumer.stop()
