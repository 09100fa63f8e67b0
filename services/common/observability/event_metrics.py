"""Metrics derived from the events a service publishes.

Every catalogue event goes out through `publish_event`, so the state changes of a
report (submitted, ready, completed, failed), the token life and the out-rate per topic
are counted in one place instead of in every handler.
"""

from __future__ import annotations

from schemas.events import (
    BalanceRowsBatch,
    Event,
    ReportCompleted,
    ReportFailed,
    ReportReady,
    TokenIssued,
)
from services.common.observability.metrics import (
    PUBLISHED,
    REPORT_POLLS,
    REPORT_ROWS,
    REPORT_SECONDS,
    REPORTS_FAILED,
    TOKEN_EXPIRY,
)


def count_published(topic: str, event_type: str) -> None:
    """A record published as stored (the outbox relay): counted by its type only."""
    PUBLISHED.labels(topic, event_type).inc()


def observe_published(topic: str, event: Event) -> None:
    PUBLISHED.labels(topic, event.event_type).inc()
    if isinstance(event, BalanceRowsBatch):
        REPORT_ROWS.inc(len(event.rows))
    elif isinstance(event, ReportReady):
        REPORT_POLLS.observe(event.polls)
    elif isinstance(event, ReportCompleted):
        for stage, seconds in event.durations_s.items():
            REPORT_SECONDS.labels(stage).observe(seconds)
        if event.durations_s:
            REPORT_SECONDS.labels("total").observe(sum(event.durations_s.values()))
    elif isinstance(event, ReportFailed):
        REPORTS_FAILED.labels(event.stage, event.code).inc()
    elif isinstance(event, TokenIssued):
        TOKEN_EXPIRY.labels(event.member, event.sender).set(event.expires_at.timestamp())
