"""`kopru top`'s figures from two snapshots: rates, lag per group, dead letters with their
newest reason, readiness, reports in flight and recent payment outcomes."""

from __future__ import annotations

import time

from rich.console import Console

from services.common.kafka.topic_stats import Newest, TopicOffsets
from services.common.monitoring.snapshot import (
    BrokerState,
    ServiceState,
    Snapshot,
    parse_metrics,
)
from services.common.monitoring.top_view import render


def _text(prev: Snapshot, cur: Snapshot, first: Snapshot) -> str:
    console = Console(width=220, record=True, color_system=None)
    console.print(render(prev, cur, first))
    return console.export_text()


def _service(name: str, metrics: str, ready: bool = True, **failed: str) -> ServiceState:
    return ServiceState(name, "http://x", ready, dict(failed), parse_metrics(metrics))


def _snapshot(at: float, requested: int, consumed: int, recorded: int, ready: bool) -> Snapshot:
    requester = _service(
        "report-requester",
        f'kopru_messages_total{{service="report-requester",topic="mks.reports.requested",'
        f'outcome="done"}} {consumed}\n',
    )
    poller = _service(
        "status-poller",
        'kopru_reports_in_flight{stage="polling"} 3\n'
        'kopru_report_oldest_in_flight_seconds{stage="polling"} 4000\n',
    )
    payments = _service(
        "payment-notifier",
        f'kopru_bkm_returns_total{{source="callback",result="recorded"}} {recorded}\n',
        ready,
        **({} if ready else {"payments-store": "ConnectionError: refused"}),
    )
    broker = BrokerState(
        offsets={
            "mks.reports.requested": TopicOffsets("mks.reports.requested", {0: 0}, {0: requested}),
            "mks.reports.requested.dlq": TopicOffsets("mks.reports.requested.dlq", {0: 0}, {0: 2}),
            "mks.auth.tokens": TopicOffsets("mks.auth.tokens", {0: 0}, {0: 1}),
        },
        lag={
            "report-requester": {"mks.reports.requested": 5, "mks.auth.tokens": None},
        },
        newest_dead={
            "mks.reports.requested.dlq": Newest(
                int((time.time() - 30) * 1000), {"x-dlq-reason": "validation failed: member"}
            )
        },
    )
    return Snapshot(at, [requester, poller, payments], broker)


def test_rates_lag_dead_letters_and_readiness() -> None:
    first = _snapshot(1000.0, requested=100, consumed=90, recorded=4, ready=True)
    cur = _snapshot(1010.0, requested=150, consumed=130, recorded=10, ready=False)
    text = _text(first, cur, first)
    row = next(line for line in text.splitlines() if "│ mks.reports.requested " in line)
    cells = [c.strip() for c in row.split("│")]
    assert cells[2:5] == ["150", "5.0", "4.0"]  # 50 in / 10 s, 40 consumed / 10 s
    assert cells[5] == "report-requester=5"
    assert cells[6] == "2" and cells[7].startswith("30s ago: validation failed")
    tokens = next(line for line in text.splitlines() if "│ mks.auth.tokens " in line)
    assert "report-requester=no commits" in tokens
    notifier = next(line for line in text.splitlines() if "│ payment-notifier " in line)
    assert "NOT READY" in notifier and "payments-store: ConnectionError" in notifier
    polling = next(line for line in text.splitlines() if "│ submitted " in line)
    assert "3 polling" in polling and "67m" in polling
    recorded = next(line for line in text.splitlines() if "│ bkm recorded " in line)
    assert [c.strip() for c in recorded.split("│")][2:4] == ["6", "10"]
