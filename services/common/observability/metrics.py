"""Prometheus metrics shared by every service (served on /metrics by health.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES = Counter(
    "kopru_messages_total",
    "Messages settled by a consumer, by outcome (done, retry, dead_letter).",
    ["service", "topic", "outcome"],
)
RETRIES = Counter(
    "kopru_retries_total",
    "Messages sent to a retry tier.",
    ["service", "topic", "tier"],
)
DEAD_LETTERS = Counter(
    "kopru_dead_letters_total",
    "Messages sent to a dead-letter topic.",
    ["service", "topic", "error_type"],
)
DELAYED_PARTITIONS = Gauge(
    "kopru_delayed_partitions",
    "Partitions paused until a delayed message is due.",
)
CONSUMER_LAG = Gauge(
    "kopru_consumer_lag",
    "Messages between the committed offset and the high-water mark, per partition.",
    ["service", "group", "topic", "partition"],
)
