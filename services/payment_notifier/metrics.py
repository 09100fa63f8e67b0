"""Prometheus metrics of the payment-notifier (served on /metrics with the platform's)."""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge, Histogram

RETURNS = Counter(
    "kopru_bkm_returns_total",
    "BKM confirmations and redirects by source and result "
    "(recorded, replay, conflict, bad_signature, stale, invalid, advisory).",
    ["source", "result"],
)
TS_SKEW = Histogram(
    "kopru_bkm_ts_skew_seconds",
    "Our clock minus BKM's ts on received messages (positive: BKM's ts is behind).",
    buckets=(-300, -60, -10, -1, 0, 1, 10, 60, 300, 3600),
)
LAST_TS_SKEW = Gauge("kopru_bkm_last_ts_skew_seconds", "Skew of the last received BKM ts.")
ALERTS = Counter(
    "kopru_payments_alerts_total",
    "Conditions that need a human: altered replays, late failures, query disagreements.",
    ["kind"],
)
PUBLISHED = Counter(
    "kopru_bkm_outcomes_published_total",
    "Payment outcomes published on payments.bkm.confirmations, by path.",
    ["path"],
)
RECONCILED = Counter(
    "kopru_bkm_reconciliations_total",
    "QueryPaymentResult calls by result (confirmed, failed, pending, error).",
    ["result"],
)
MOKA_RESULTS = Counter(
    "kopru_moka_applications_total", "Moka dealer applications by outcome.", ["outcome"]
)


@functools.cache
def _returns(source: str, result: str) -> Counter:
    return RETURNS.labels(source, result)


def count_return(source: str, result: str) -> None:
    """RETURNS by source and result; each labelled child is looked up once (both are
    from small fixed sets), not per request."""
    _returns(source, result).inc()
