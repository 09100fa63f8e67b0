"""Connection settings for the plain aiokafka clients kopru creates next to FastStream
(the token cache, the rows publisher, CLI tools): bootstrap, TLS and SASL from
`KafkaSettings`, in one place, so no client silently connects without them."""

from __future__ import annotations

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


def new_producer(settings: KafkaSettings, **kw: Any) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas (acks=all) unless told otherwise."""
    kw.setdefault("acks", "all")
    return AIOKafkaProducer(**connection_kwargs(settings), **kw)


def new_consumer(settings: KafkaSettings, *topics: str, **kw: Any) -> AIOKafkaConsumer:
    """A consumer that never auto-commits and never starts from `latest`."""
    kw.setdefault("enable_auto_commit", False)
    kw.setdefault("auto_offset_reset", "earliest")
    kw.setdefault("fetch_max_wait_ms", settings.fetch_max_wait_ms)
    return AIOKafkaConsumer(*topics, **connection_kwargs(settings), **kw)
