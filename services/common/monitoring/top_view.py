"""What `kopru top` draws from snapshots: services, topics, reports, payments.

Rates come from two snapshots (the previous one and this one); "recent" figures from the
oldest snapshot inside the window (counters are totals since each process started).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from schemas.events import CATALOGUE
from services.common.monitoring.snapshot import Snapshot, groups

REPORT_EVENTS = ("ReportSubmitted", "ReportReady", "ReportCompleted", "ReportFailed")
PAYMENT_RESULTS = ("recorded", "replay", "conflict", "bad_signature", "stale", "invalid")


def _rate(cur: float, prev: float, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    return f"{max(0.0, cur - prev) / seconds:.1f}"


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _lag(lags: dict[str, int | None], topic: str) -> str:
    if topic not in lags:
        return "?"
    value = lags[topic]
    return "no commits" if value is None else str(value)


def services_table(prev: Snapshot, cur: Snapshot) -> Table:
    dt = cur.at - prev.at
    before = {s.name: s for s in prev.services}
    t = Table(title="services", title_justify="left", expand=False)
    for col in ("service", "ready", "consumed/s", "published/s", "dead letters", "problem"):
        t.add_column(col, justify="left" if col in ("service", "ready", "problem") else "right")
    for s in cur.services:
        p = before.get(s.name, s)
        ready = Text("?", "yellow") if s.ready is None else (
            Text("ready", "green") if s.ready else Text("NOT READY", "bold red")
        )  # fmt: skip
        problem = s.error or "; ".join(f"{k}: {v}" for k, v in s.failed.items())
        t.add_row(
            s.name,
            ready,
            _rate(s.total("kopru_messages_total"), p.total("kopru_messages_total"), dt),
            _rate(
                s.total("kopru_events_published_total"), p.total("kopru_events_published_total"), dt
            ),
            f"{s.total('kopru_dead_letters_total'):.0f}",
            problem[:80],
        )
    return t


def topics_table(prev: Snapshot, cur: Snapshot) -> Table:
    dt = cur.at - prev.at
    readers = groups()
    t = Table(title="topics", title_justify="left")
    columns = (
        "topic",
        "messages",
        "in/s",
        "consumed/s",
        "lag per group",
        "dlq",
        "newest dead letter",
    )
    for col in columns:
        if col in ("messages", "in/s", "consumed/s", "dlq"):
            t.add_column(col, justify="right", no_wrap=True, min_width=len(col))
        else:
            widest = {"topic": 42, "lag per group": 48, "newest dead letter": 60}[col]
            t.add_column(col, no_wrap=True, overflow="ellipsis", max_width=widest)
    for spec in CATALOGUE:
        o = cur.broker.offsets.get(spec.name)
        po = prev.broker.offsets.get(spec.name, o)
        lag = ", ".join(
            f"{g}={_lag(cur.broker.lag.get(g, {}), spec.name)}"
            for g in sorted(readers)
            if spec.name in readers[g]
        )
        dlq = cur.broker.offsets.get(spec.dlq)
        newest = cur.broker.newest_dead.get(spec.dlq)
        reason = ""
        if newest is not None:
            reason = f"{_age(time.time() - newest.timestamp_ms / 1000)} ago: " + newest.headers.get(
                "x-dlq-reason", "?"
            )
        t.add_row(
            spec.name,
            "-" if o is None else str(o.total),
            "-" if o is None or po is None else _rate(o.total, po.total, dt),
            _rate(
                cur.total("kopru_messages_total", topic=spec.name),
                prev.total("kopru_messages_total", topic=spec.name),
                dt,
            ),
            lag or "-",
            "-" if dlq is None else Text(str(dlq.depth), "bold red" if dlq.depth else ""),
            reason[:60],
        )
    return t


def reports_table(first: Snapshot, cur: Snapshot) -> Table:
    t = Table(title=f"reports (recent: last {_age(cur.at - first.at)})", title_justify="left")
    for col in ("state", "in flight", "oldest", "recent", "since start"):
        t.add_column(col, justify="left" if col == "state" else "right")
    in_flight = cur.by("kopru_reports_in_flight", "stage")
    oldest: dict[str, float] = {}
    for s in cur.services:  # the oldest of all replicas
        for name, age in s.by("kopru_report_oldest_in_flight_seconds", "stage").items():
            oldest[name] = max(oldest.get(name, 0.0), age)
    requested = (
        "requested",
        "kopru_messages_total",
        {"topic": "mks.reports.requested", "outcome": "done"},
    )
    rows = [requested] + [
        (e.removeprefix("Report").lower(), "kopru_events_published_total", {"event_type": e})
        for e in REPORT_EVENTS
    ]
    stage_of = {"submitted": "polling", "ready": "fetching"}
    for state, metric, match in rows:
        stage = stage_of.get(state)
        now, then = cur.total(metric, **match), first.total(metric, **match)
        t.add_row(
            state,
            "" if stage is None else f"{in_flight.get(stage, 0):.0f} {stage}",
            "" if stage is None or not in_flight.get(stage) else _age(oldest.get(stage, 0.0)),
            f"{max(0.0, now - then):.0f}",
            f"{now:.0f}",
        )
    return t


def payments_table(first: Snapshot, cur: Snapshot) -> Table:
    t = Table(title=f"payments (recent: last {_age(cur.at - first.at)})", title_justify="left")
    for col in ("outcome", "recent", "since start"):
        t.add_column(col, justify="left" if col == "outcome" else "right")
    now, then = (
        cur.by("kopru_bkm_returns_total", "result"),
        first.by("kopru_bkm_returns_total", "result"),
    )
    for result in sorted(set(PAYMENT_RESULTS) | set(now)):
        t.add_row(
            f"bkm {result}",
            f"{max(0.0, now.get(result, 0) - then.get(result, 0)):.0f}",
            f"{now.get(result, 0):.0f}",
        )
    moka, moka0 = (
        cur.by("kopru_moka_applications_total", "outcome"),
        first.by("kopru_moka_applications_total", "outcome"),
    )
    for outcome in sorted(moka):
        t.add_row(
            f"moka {outcome}",
            f"{max(0.0, moka[outcome] - moka0.get(outcome, 0)):.0f}",
            f"{moka[outcome]:.0f}",
        )
    backlog = cur.total("kopru_payments_outbox_backlog")
    t.add_row("outbox backlog", "", f"{backlog:.0f}")
    return t  # fmt: skip


def render(prev: Snapshot, cur: Snapshot, first: Snapshot) -> Group:
    when = datetime.fromtimestamp(cur.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = Text(f"kopru top  {when}  rates over {cur.at - prev.at:.1f}s", style="bold")
    parts: list[Table | Text] = [head]
    if cur.broker.error:
        parts.append(Text(f"broker: {cur.broker.error}", style="bold red"))
    parts += [
        services_table(prev, cur),
        topics_table(prev, cur),
        reports_table(first, cur),
        payments_table(first, cur),
    ]
    return Group(*parts)
