"""Connection settings for the plain aiokafka clients kopru creates next to FastStream
(the token cache, the rows publisher, CLI tools): bootstrap, TLS and SASL from
`KafkaSettings`, in one place, so no client silently connects without them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from services.common.settings import KafkaSettings


def connection_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = create_ssl_context(cafile=settings.ssl_cafile)
    if settings.security_protocol.startswith("SASL"):
        kw["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        kw["sasl_plain_username"] = settings.sasl_username
        kw["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return kw


# Whether the cluster behind a bootstrap string supports the idempotent producer, as
# found by capabilities.detect() at service start.
DETECTED_IDEMPOTENCE: dict[str, bool] = {}


def idempotence(settings: KafkaSettings) -> bool:
    """Whether producers for these settings should be idempotent."""
    if settings.idempotent_producer is not None:
        return settings.idempotent_producer
    return DETECTED_IDEMPOTENCE.get(settings.bootstrap_servers, False)


def new_producer(settings: KafkaSettings, **kw: Any) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas (acks=all), idempotent where the
    cluster supports it (capabilities.py), unless told otherwise."""
    kw.setdefault("acks", "all")
    kw.setdefault("enable_idempotence", idempotence(settings))
    kw.setdefault("metadata_max_age_ms", settings.metadata_max_age_ms)
    return AIOKafkaProducer(**connection_kwargs(settings), **kw)


def new_consumer(settings: KafkaSettings, *topics: str, **kw: Any) -> AIOKafkaConsumer:
    """A consumer that never auto-commits and never starts from `latest`."""
    kw.setdefault("enable_auto_commit", False)
    kw.setdefault("auto_offset_reset", "earliest")
    kw.setdefault("fetch_max_wait_ms", settings.fetch_max_wait_ms)
    kw.setdefault("max_partition_fetch_bytes", settings.max_partition_fetch_bytes)
    kw.setdefault("fetch_max_bytes", settings.fetch_max_bytes)
    kw.setdefault("metadata_max_age_ms", settings.metadata_max_age_ms)
    return AIOKafkaConsumer(*topics, **connection_kwargs(settings), **kw)


async def stop_quietly(stopping: Awaitable[object]) -> None:
    """Await a client's (or the FastStream broker's) `stop()`. aiokafka 0.14 can surface
    the cancellation of its *own* tasks from `stop()`: after the broker died, the
    fetcher's pending fetch tasks sit in their retry back-off, and `Fetcher.close()`
    cancels and awaits them unguarded. Only a cancellation of the caller's task is
    passed on, so a stop after a broker outage still runs to the end."""
    try:
        await stopping
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
