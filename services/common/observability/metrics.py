"""Prometheus metrics shared by every service (served on /metrics by health.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
PUBLISHED = Counter(
    "kopru_events_published_total",
    "Events published on a catalogue topic, by event type (a report's state changes too).",
    ["topic", "event_type"],
)
DLQ_DEPTH = Gauge(
    "kopru_dlq_depth",
    "Messages held in a dead-letter topic (high-water mark minus log start), sampled.",
    ["topic"],
)

# --- MKK --------------------------------------------------------------------------------
MKK_CALLS = Counter(
    "kopru_mkk_calls_total",
    "MKK calls by endpoint, result code and the action it maps to (code 'transport': no answer).",
    ["endpoint", "code", "action"],
)
MKK_CALL_SECONDS = Histogram(
    "kopru_mkk_call_seconds",
    "MKK call round trip (request sent to answer headers), by endpoint.",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
TOKEN_EXPIRY = Gauge(
    "kopru_mkk_token_expiry_timestamp_seconds",
    "Unix time at which the live MKK token of (member, sender) expires.",
    ["member", "sender"],
)

# --- reports ----------------------------------------------------------------------------
REPORT_POLLS = Histogram(
    "kopru_report_polls",
    "async-report-status polls a report needed before it was ready.",
    buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987),
)
REPORT_SECONDS = Histogram(
    "kopru_report_duration_seconds",
    "Time a completed report spent per stage (mkk_prepare, download, publish) and in total "
    "(from submission to completion).",
    ["stage"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
REPORT_ROWS = Counter("kopru_report_rows_total", "Balance rows published on mks.reports.rows.")
REPORTS_FAILED = Counter(
    "kopru_reports_failed_total", "Reports failed, by stage and code.", ["stage", "code"]
)

# --- HTTP side and readiness ------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "kopru_http_requests_total",
    "Requests served on the service's HTTP port, by route and status code.",
    ["route", "status"],
)
HTTP_SECONDS = Histogram(
    "kopru_http_request_seconds",
    "Time to answer a request on the service's HTTP port, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
READY = Gauge("kopru_ready", "1 while every readiness check passes (what /readyz answers).")
READY_CHECK = Gauge("kopru_readiness_check", "1 while this readiness check passes.", ["check"])

# --- payments ---------------------------------------------------------------------------
OUTBOX_BACKLOG = Gauge(
    "kopru_payments_outbox_backlog", "Recorded payment outcomes not yet published."
)
OUTBOX_OLDEST = Gauge(
    "kopru_payments_outbox_oldest_seconds",
    "Age of the oldest recorded payment outcome not yet published (0: none).",
)
