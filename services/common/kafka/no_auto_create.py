"""kopru's Kafka clients never ask the broker to create a topic.

aiokafka sends every metadata request (v4 and later) with allow_auto_topic_creation=true
and has no setting for it; the Java clients have one (`allow.auto.create.topics`,
KIP-361) and librdkafka advises turning it off. A broker that creates topics on demand
(tansu always; Apache Kafka unless `auto.create.topics.enable=false`) then creates any
topic a client merely looks up, with the broker's default partitions and configuration.

That is how a record was lost (tests/e2e/test_broker_restart.py): the local broker came
back empty, a service's producer refreshed its metadata before `kopru broker` made the
catalogue again, the broker created `mks.reports.submitted` with 4 partitions instead of
6, the catalogue then left the existing topic alone, and the producer, still holding 6,
wrote to partitions 4 and 5 that no consumer could see. Topics come from the catalogue
(topic_admin.py, the Strimzi KafkaTopic resources) and from nowhere else: a lookup of a
missing topic answers UNKNOWN_TOPIC_OR_PARTITION, a publish to it fails after the request
timeout and is retried, and the consumer waits until the topic is made.

`install()` swaps the request class in the two aiokafka modules that build metadata
requests (the client under every producer and consumer, and the admin client); importing
`services.common.kafka` does it, before any client exists.
"""

from __future__ import annotations

import aiokafka.admin.client
import aiokafka.client
from aiokafka.protocol.metadata import MetadataRequest


class MetadataRequestNoAutoCreate(MetadataRequest):  # type: ignore[misc]
    """A metadata request that never creates the topics it names."""

    def __init__(
        self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False
    ) -> None:
        super().__init__(topics, bool(allow_auto_topic_creation))


def install() -> None:
    for module in (aiokafka.client, aiokafka.admin.client):
        module.MetadataRequest = MetadataRequestNoAutoCreate  # type: ignore[misc]


def installed() -> bool:
    return all(
        module.MetadataRequest is MetadataRequestNoAutoCreate
        for module in (aiokafka.client, aiokafka.admin.client)
    )
