"""Kafka header names kopru reads and writes, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CORRELATION_ID = "x-correlation-id"
EVENT_TYPE = "x-event-type"

# Delayed re-delivery (retry tiers and the durable delay path).
ATTEMPT = "x-kopru-attempt"
DUE_AT_MS = "x-kopru-due-at-ms"
ORIGINAL_TOPIC = "x-kopru-original-topic"
ORIGINAL_PARTITION = "x-kopru-original-partition"
ORIGINAL_OFFSET = "x-kopru-original-offset"
FIRST_FAILED_AT_MS = "x-kopru-first-failed-at-ms"
RETRY_REASON = "x-kopru-retry-reason"

# Dead letters.
DLQ_REASON = "x-dlq-reason"
DLQ_ERROR_TYPE = "x-dlq-error-type"
DLQ_SERVICE = "x-dlq-service"
DLQ_GROUP = "x-dlq-group"
DLQ_ORIGINAL_TOPIC = "x-dlq-original-topic"
DLQ_ORIGINAL_PARTITION = "x-dlq-original-partition"
DLQ_ORIGINAL_OFFSET = "x-dlq-original-offset"
DLQ_ATTEMPTS = "x-dlq-attempts"
DLQ_FAILED_AT = "x-dlq-failed-at"
# A dead letter that could not carry the original whole (oversize.py): it refers to it.
DLQ_REFERENCE = "x-dlq-reference"
DLQ_REFERENCE_WHY = "x-dlq-reference-why"
DLQ_ORIGINAL_SIZE = "x-dlq-original-size"
DLQ_ORIGINAL_SHA256 = "x-dlq-original-sha256"
DLQ_VALUE_PREFIX_BYTES = "x-dlq-value-prefix-bytes"

KOPRU_INTERNAL = (
    ATTEMPT,
    DUE_AT_MS,
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    FIRST_FAILED_AT_MS,
    RETRY_REASON,
)

RawHeaders = list[tuple[str, bytes]]


def as_dict(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Decode raw Kafka headers (last one wins); undecodable bytes are replaced."""
    return {k: v.decode("utf-8", "replace") for k, v in (headers or ())}


def to_raw(headers: Mapping[str, str | int | float]) -> RawHeaders:
    return [(k, str(v).encode()) for k, v in headers.items()]


def get_int(headers: Mapping[str, str], name: str, default: int = 0) -> int:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return default
