"""No kopru client creates a topic by looking it up (services/common/kafka/no_auto_create.py).

tansu creates any topic a metadata request names (4 partitions), and so does Apache Kafka
with its default `auto.create.topics.enable=true`. Before the fix, a producer's lookup of a
missing catalogue topic made it with the broker's default partition count, and the
catalogue then left it so: the broker-restart loss of tests/e2e/test_broker_restart.py.
"""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from structlog.testing import capture_logs

from services.common.kafka.broker import make_broker
from services.common.kafka.clients import connection_kwargs, new_consumer, new_producer
from services.common.kafka.kafka_cluster import wait_for_leaders
from services.common.kafka.no_auto_create import installed
from services.common.kafka.topic_admin import TopicPlan, create_topics
from services.common.settings import KafkaSettings
from tests.conftest import unique

pytestmark = [pytest.mark.integration, pytest.mark.engines("tansu", "kafka")]


async def _topics(settings: KafkaSettings) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if not n.startswith("__")]
        described = await admin.describe_topics(names) if names else []
        return {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
    finally:
        await admin.close()


async def test_lookups_and_publishes_do_not_create_a_topic(kafka_settings: KafkaSettings) -> None:
    assert installed()
    settings = kafka_settings.model_copy(update={"request_timeout_ms": 1500})
    name = unique("missing")

    # FastStream's producer (every service's publish): the publish fails, nothing is made.
    broker = make_broker(settings, client_id="no-auto-create")
    await broker.start()
    try:
        with pytest.raises((UnknownTopicOrPartitionError, KafkaTimeoutError)):
            await broker.publish(b"x", topic=name, key=b"k")
    finally:
        await broker.stop()

    # A plain producer's and a consumer's metadata lookups of the name.
    producer = new_producer(settings)
    await producer.start()
    consumer = new_consumer(settings)
    await consumer.start()
    try:
        await producer.client._metadata_update(producer.client.cluster, {name})
        await consumer._client._metadata_update(consumer._client.cluster, {name})
        assert consumer.partitions_for_topic(name) is None
    finally:
        await producer.stop()
        await consumer.stop()

    assert name not in await _topics(settings)

    # So the catalogue makes it as planned: 6 partitions, not the broker's default.
    assert await create_topics(settings, [TopicPlan(name, 6, {})], with_config=False) == [name]
    await wait_for_leaders(settings.bootstrap_servers, [name])
    assert (await _topics(settings))[name] == 6


async def test_a_topic_short_of_the_catalogue_is_reported(kafka_settings: KafkaSettings) -> None:
    name = unique("short")
    await create_topics(kafka_settings, [TopicPlan(name, 2, {})], with_config=False)
    await wait_for_leaders(kafka_settings.bootstrap_servers, [name])
    with capture_logs() as logs:
        created = await create_topics(kafka_settings, [TopicPlan(name, 6, {})], with_config=False)
    assert created == []
    [warning] = [e for e in logs if e["event"] == "topic has fewer partitions than the catalogue"]
    assert (warning["topic"], warning["partitions"], warning["catalogue"]) == (name, 2, 6)
    assert (await _topics(kafka_settings))[name] == 2  # reported, never changed by kopru
