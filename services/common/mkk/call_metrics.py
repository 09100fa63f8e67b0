"""MKK call metrics: round-trip time per endpoint and every answer's code and action.

- kopru_mkk_call_seconds{endpoint}: request sent to answer headers (or to the failure);
- kopru_mkk_calls_total{endpoint, code, action}: code "transport" with action RETRY_LATER
  when no answer came (timeout, connection refused).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from schemas.mkk import AUTH_PATH, BALANCE_REPORT_PATH, REPORT_CONTENT_PATH, REPORT_STATUS_PATH
from services.common.mkk.outcome import MkkOutcome, MkkTransportError
from services.common.observability.metrics import MKK_CALL_SECONDS, MKK_CALLS

ENDPOINTS = {
    AUTH_PATH: "auth",
    BALANCE_REPORT_PATH: "balance-report",
    REPORT_STATUS_PATH: "async-report-status",
    REPORT_CONTENT_PATH: "async-report-content",
}


def endpoint(path: str) -> str:
    return ENDPOINTS.get(path, path.rsplit("/", 1)[-1])


@contextmanager
def timed(path: str) -> Iterator[None]:
    """Time one HTTP round trip; count it as "transport" if it raises MkkTransportError."""
    started = time.perf_counter()
    try:
        yield
    except MkkTransportError:
        MKK_CALLS.labels(endpoint(path), "transport", "RETRY_LATER").inc()
        raise
    finally:
        MKK_CALL_SECONDS.labels(endpoint(path)).observe(time.perf_counter() - started)


def counted(path: str, outcome: MkkOutcome) -> MkkOutcome:
    """Count an answer by its code and mapped action; returns it unchanged."""
    MKK_CALLS.labels(endpoint(path), outcome.code, outcome.action.value).inc()
    return outcome
