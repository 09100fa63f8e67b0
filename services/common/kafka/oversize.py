"""Records that cannot be dead-lettered whole become a *reference* to the original.

Real Kafka refuses a record over `message.max.bytes` (1 MB by default), and every
producer refuses one over its `max_request_size`. A record that arrived that large
(a topic configured for big records, a misbehaving upstream) can therefore never be
copied to `<topic>.dlq` as it is. Retrying the copy would block its partition forever,
so instead the DLQ gets an entry that names the original (topic, partition, offset),
its size and SHA-256, the reason, and as much of the value as fits. `kopru dlq show`
says the entry is a reference; the original stays readable at its offset for as long
as the topic's retention keeps it.
"""

from __future__ import annotations

import hashlib

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from services.common.kafka import headers as H

# What a dead-letter entry may weigh: under real Kafka's default 1 MB with room for
# headers and the batch overhead.
DEFAULT_MAX_RECORD_BYTES = 1_000_000
HEADROOM_BYTES = 64 * 1024


def headers_size(headers: dict[str, str]) -> int:
    return sum(len(k) + len(v.encode()) + 8 for k, v in headers.items())


def fits(value: bytes, key: bytes | None, headers: dict[str, str], limit: int) -> bool:
    return len(value) + len(key or b"") + headers_size(headers) + 128 <= limit


def too_large(exc: BaseException) -> bool:
    """The broker or the producer refused a record for its size."""
    return isinstance(exc, MessageSizeTooLargeError | RecordTooLargeError)


def reference(
    value: bytes, headers: dict[str, str], limit: int, why: str
) -> tuple[bytes, dict[str, str]]:
    """The value prefix and headers of a reference entry for `value`."""
    out = dict(headers)
    room = max(0, limit - HEADROOM_BYTES - headers_size(out))
    prefix = value[:room]
    out.update(
        {
            H.DLQ_REFERENCE: "true",
            H.DLQ_REFERENCE_WHY: why[:300],
            H.DLQ_ORIGINAL_SIZE: str(len(value)),
            H.DLQ_ORIGINAL_SHA256: hashlib.sha256(value).hexdigest(),
            H.DLQ_VALUE_PREFIX_BYTES: str(len(prefix)),
        }
    )
    return prefix, out
