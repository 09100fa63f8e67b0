"""Publishing one event from the command line, as upstream systems do (`kopru payment`,
`kopru report`, `kopru auth reset`): keyed, with its type and correlation id headers.

A broker that does not answer, or a topic the catalogue has not made, is said in one line
(exit 2), not a traceback after the request timeout: no kopru client creates a topic by
publishing to it (services/common/kafka/no_auto_create.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from aiokafka.errors import KafkaConnectionError

from schemas.events import Event, TopicSpec
from services.common.kafka import headers as H
from services.common.kafka.broker import encode_event
from services.common.kafka.clients import new_producer
from services.common.settings import KafkaSettings

T = TypeVar("T")


class NotPublished(Exception):
    """The event was not published; the message says why and what to do."""


async def publish_one(kafka: KafkaSettings, spec: TopicSpec, event: Event) -> None:
    producer = new_producer(kafka)
    try:
        await producer.start()
    except KafkaConnectionError as exc:
        raise NotPublished(f"no Kafka broker answers at {kafka.bootstrap_servers}: {exc}") from None
    try:
        cluster = await producer.client.fetch_all_metadata()
        if spec.name not in cluster.topics():
            raise NotPublished(
                f"topic {spec.name} does not exist on {kafka.bootstrap_servers}; kopru does "
                "not create topics by publishing: make the catalogue first (`kopru broker` "
                "for a local broker, the KafkaTopic resources in deploy/ on a cluster)"
            )
        headers = [(H.EVENT_TYPE, event.event_type.encode())]
        if event.correlation_id:
            headers.append((H.CORRELATION_ID, event.correlation_id.encode()))
        await producer.send_and_wait(
            spec.name, encode_event(spec, event), key=event.kafka_key(), headers=headers
        )
    finally:
        await producer.stop()


def run_or_exit(work: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(work); a NotPublished ends the command with its message and exit 2."""
    try:
        return asyncio.run(work)
    except NotPublished as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
