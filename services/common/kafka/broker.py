"""The FastStream Kafka broker of a service, built from settings, and event publishing.

Nothing here knows which broker it talks to: the local one or a real cluster are the
same bootstrap servers setting. Producers wait for all in-sync replicas (acks=all) and
are idempotent where the cluster supports it (capabilities.py decides at start);
consumers never auto-commit (delivery.py commits after the effect is durable) and
start from the earliest offset of a partition they have never committed.
"""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from schemas.events import Event, TopicSpec
from services.common.kafka import headers as H
from services.common.kafka.clients import idempotence
from services.common.kafka.delivery import Delivery, DeliveryPolicy
from services.common.kafka.progress import ConsumerProgress
from services.common.kafka.retry_tiers import retry_topics
from services.common.observability.event_metrics import observe_published
from services.common.observability.logging import get_logger
from services.common.settings import KafkaSettings

log = get_logger(__name__)

# Real Kafka refuses messages over message.max.bytes (1 MB by default); the local
# broker does not, so kopru checks before sending (ARCHITECTURE, local broker limits).
MAX_EVENT_BYTES = 1_000_000


def set_idempotence(broker: KafkaBroker, on: bool) -> None:
    """Switch the broker's producer before it connects (FastStream keeps the producer's
    keyword arguments in `_connection_kwargs` until `start()` builds it)."""
    kwargs = getattr(broker, "_connection_kwargs", None)
    if isinstance(kwargs, dict):
        kwargs["enable_idempotence"] = on


class EventTooLarge(ValueError):
    pass


def _security(settings: KafkaSettings) -> Any:
    if not settings.security_protocol.startswith("SASL"):
        if settings.security_protocol == "SSL":
            return BaseSecurity(ssl_context=create_ssl_context(cafile=settings.ssl_cafile))
        return None
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    user = settings.sasl_username or ""
    use_ssl = settings.security_protocol == "SASL_SSL"
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        settings.sasl_mechanism or "PLAIN"
    ]
    ssl = create_ssl_context(cafile=settings.ssl_cafile) if use_ssl else None
    return cls(username=user, password=password, use_ssl=use_ssl, ssl_context=ssl)


def bootstrap_list(servers: str) -> list[str]:
    """`h1:p1,h2:p2` as ["h1:p1", "h2:p2"]: FastStream wraps a string in a list as ONE
    host, so a comma-separated bootstrap (every multi-node cluster) failed to resolve."""
    return [s.strip() for s in servers.split(",") if s.strip()]


def make_broker(settings: KafkaSettings, *, client_id: str, **kwargs: Any) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_list(settings.bootstrap_servers),
        client_id=f"{settings.client_id}-{client_id}",
        acks="all",
        # Decided again at start (Service.start → capabilities.detect) when unset.
        enable_idempotence=idempotence(settings),
        request_timeout_ms=settings.request_timeout_ms,
        metadata_max_age_ms=settings.metadata_max_age_ms,
        max_request_size=max(1_048_576, settings.max_record_bytes + 64 * 1024),
        security=_security(settings),
        logger=None,
        **kwargs,
    )


def consumer_options(settings: KafkaSettings, group: str) -> dict[str, Any]:
    """Keyword arguments for `broker.subscriber(...)` that every kopru consumer uses."""
    return {
        "group_id": group,
        "ack_policy": AckPolicy.MANUAL,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "max_partition_fetch_bytes": settings.max_partition_fetch_bytes,
        "fetch_max_bytes": settings.fetch_max_bytes,
    }


def subscribed_topics(topic: str, settings: KafkaSettings, group: str) -> list[str]:
    """The topic itself and this group's retry tier topics for it."""
    return [topic, *retry_topics(topic, group, settings.retry_tiers_s)]


def attach_delivery(
    broker: KafkaBroker, policy: DeliveryPolicy, *, stall_after_s: float = 120.0
) -> Delivery:
    async def publish(value: bytes, topic: str, key: bytes | None, hdrs: dict[str, str]) -> None:
        await broker.publish(value, topic=topic, key=key, headers=hdrs)

    delivery = Delivery(policy, publish, ConsumerProgress(stall_after_s=stall_after_s))
    broker.add_middleware(delivery.middleware())
    return delivery


def encode_event(spec: TopicSpec, event: Event) -> bytes:
    if type(event) not in spec.event_types:
        raise TypeError(f"{type(event).__name__} does not belong on {spec.name}")
    data = event.model_dump_json().encode()
    if len(data) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"{type(event).__name__} is {len(data)} bytes (> {MAX_EVENT_BYTES})")
    return data


async def publish_event(
    broker: KafkaBroker, spec: TopicSpec, event: Event, *, correlation_id: str | None = None
) -> None:
    """Publish one event on its catalogue topic, keyed, with its type and correlation id."""
    hdrs = {H.EVENT_TYPE: event.event_type}
    cid = correlation_id or event.correlation_id or current_correlation_id()
    if cid:
        hdrs[H.CORRELATION_ID] = cid
    await broker.publish(
        encode_event(spec, event), topic=spec.name, key=event.kafka_key(), headers=hdrs
    )
    observe_published(spec.name, event)


def current_correlation_id() -> str | None:
    """The correlation id of the message being handled (bound by the delivery middleware)."""
    import structlog

    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return str(value) if value else None
