"""The panels of kopru's three dashboards (reports, payments, platform), as data.

One list feeds the Grafana JSON (dashboards.py, with grafana-foundation-sdk), the panel
list in docs/dashboards.md, and the test that checks every query's metric names against
what the running services export on /metrics. `kopru_service` is the target label the
PodMonitor (and the e2e Prometheus) sets from the pod's app.kubernetes.io/name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["timeseries", "stat", "table"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    title: str
    queries: tuple[Query, ...]
    description: str
    kind: Kind = "timeseries"
    unit: str = "short"
    width: int = 12


@dataclass(frozen=True)
class RowSpec:
    title: str
    panels: tuple[PanelSpec, ...]


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: tuple[RowSpec, ...]


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def p(title: str, description: str, *queries: Query, **kw: object) -> PanelSpec:
    return PanelSpec(title, queries, description, **kw)  # type: ignore[arg-type]


def quantiles(metric: str, by: str = "", window: str = "5m") -> tuple[Query, ...]:
    """p50 and p95 of a histogram, per `by` label (or overall)."""
    out = []
    labels = f"{by}, le" if by else "le"
    for qq in ("0.5", "0.95"):
        expr = f"histogram_quantile({qq}, sum by ({labels}) (rate({metric}_bucket[{window}])))"
        legend = f"p{int(float(qq) * 100)}" + (f" {{{{{by}}}}}" if by else "")
        out.append(Query(expr, legend))
    return tuple(out)


REPORT_EVENTS = "ReportSubmitted|ReportReady|ReportCompleted|ReportFailed"

REPORTS = DashboardSpec(
    "kopru-reports",
    "kopru: MKK balance reports",
    "Report requests from intake to completion, the MKK calls they make, tokens and "
    "certificates.",
    (
        RowSpec("Requests", (
            p("Report requests by state (per minute)",
              "Requests taken in by report-requester, and the state changes published by "
              "the pipeline (submitted, ready, completed, failed).",
              q('sum(rate(kopru_messages_total{topic="mks.reports.requested",outcome="done"}[5m])) * 60',
                "requested"),
              q(f'sum by (event_type) (rate(kopru_events_published_total{{event_type=~"{REPORT_EVENTS}"}}[5m])) * 60',
                "{{event_type}}")),
            p("Reports in flight by stage",
              "Reports being polled (status-poller) or downloaded (content-fetcher) now.",
              q("sum by (stage) (kopru_reports_in_flight)", "{{stage}}"), width=6),
            p("Oldest report in flight",
              "Time since submission of the oldest report still polled or downloaded; MKK "
              "keeps a refId 24 h.",
              q("max by (stage) (kopru_report_oldest_in_flight_seconds)", "{{stage}}"),
              kind="stat", unit="s", width=6),
            p("Failed reports by stage and code (1 h)",
              "ReportFailed events per stage (request, status, content) and MKK code.",
              q("sum by (stage, code) (increase(kopru_reports_failed_total[1h]))",
                "{{stage}} {{code}}"), kind="table"),
        )),
        RowSpec("MKK calls", (
            p("MKK calls by endpoint and result code (per second)",
              "Every answer of MKK by endpoint and code; 'transport' is no answer at all.",
              q("sum by (endpoint, code) (rate(kopru_mkk_calls_total[5m]))",
                "{{endpoint}} {{code}}")),
            p("MKK errors by code (per second)",
              "Answers whose code maps to retry, re-auth or a terminal failure.",
              q('sum by (endpoint, code) (rate(kopru_mkk_calls_total{action!~"DONE|PENDING"}[5m]))',
                "{{endpoint}} {{code}}")),
            p("MKK call latency by endpoint", "Round trip of each MKK call, p50 and p95.",
              *quantiles("kopru_mkk_call_seconds", "endpoint"), unit="s"),
        )),
        RowSpec("Pipeline", (
            p("Polls per report", "async-report-status polls a report needed until ready.",
              *quantiles("kopru_report_polls", window="30m"), width=8),
            p("Rows published per second", "Balance rows published on mks.reports.rows.",
              q("sum(rate(kopru_report_rows_total[5m]))", "rows/s"), unit="rowsps", width=8),
            p("Time to completion", "Submission to completion (total) and per stage, p50 and p95.",
              *quantiles("kopru_report_duration_seconds", "stage", "30m"), unit="s", width=8),
        )),
        RowSpec("Tokens and certificates", (
            p("MKK token life left", "Seconds until the live token of each member/sender "
              "expires; auth-token renews before expiry, so this never nears 0.",
              q("min by (member, sender) (kopru_mkk_token_expiry_timestamp_seconds) - time()",
                "{{member}}/{{sender}}"), unit="s", width=8),
            p("Token renewals by code (1 h)", "MKK /v1/auth answers: 0000 is a new token.",
              q('sum by (code) (increase(kopru_mkk_calls_total{endpoint="auth"}[1h]))',
                "{{code}}"), kind="stat", width=4),
            p("Blocked MKK users", "member/sender whose password MKK refused: no retry until "
              "the secret changes or `kopru auth reset` (FAQ 15).",
              q("sum(kopru_mkk_auth_blocked)", "blocked"), kind="stat", width=4),
            p("MKK password days left", "Days until the password's 365 days end (FAQ 14).",
              q("min by (member, sender) (kopru_mkk_password_days_left)",
                "{{member}}/{{sender}}"), kind="stat", unit="d", width=4),
            p("Certificate days left", "Days until each signing/verification certificate "
              "expires (MKK §3.1).",
              q("min by (certificate) (kopru_certificate_expiry_days)", "{{certificate}}"),
              kind="stat", unit="d", width=4),
        )),
    ),
)  # fmt: skip

PAYMENTS = DashboardSpec(
    "kopru-payments",
    "kopru: payments (BKM Express, Moka)",
    "BKM confirmations and their outcomes, the outbox, reconciliation and Moka.",
    (
        RowSpec("BKM confirmations", (
            p("Confirmations by result (per minute)",
              "recorded, replay, conflict, bad_signature, stale, invalid, advisory.",
              q("sum by (result) (rate(kopru_bkm_returns_total[5m])) * 60", "{{result}}")),
            p("Confirmations by source and result (1 h)",
              "Callbacks and redirects separately.",
              q("sum by (source, result) (increase(kopru_bkm_returns_total[1h]))",
                "{{source}} {{result}}"), kind="table"),
            p("BKM ts skew", "Our clock minus BKM's ts: last message, and p5/p95 over 15 min.",
              q("max(kopru_bkm_last_ts_skew_seconds)", "last"),
              q("histogram_quantile(0.05, sum by (le) (rate(kopru_bkm_ts_skew_seconds_bucket[15m])))", "p5"),
              q("histogram_quantile(0.95, sum by (le) (rate(kopru_bkm_ts_skew_seconds_bucket[15m])))", "p95"),
              unit="s"),
            p("Confirmation endpoint: requests by status",
              "HTTP answers of payment-notifier's BKM routes; 5xx means BKM will retry.",
              q('sum by (route, status) (rate(kopru_http_requests_total{route=~"/bkm/.*"}[5m]))',
                "{{route}} {{status}}")),
            p("Confirmation endpoint latency", "p50 and p95 per BKM route.",
              q('histogram_quantile(0.95, sum by (route, le) (rate(kopru_http_request_seconds_bucket{route=~"/bkm/.*"}[5m])))',
                "p95 {{route}}"), unit="s"),
        )),
        RowSpec("Outbox and reconciliation", (
            p("Outbox backlog", "Recorded outcomes not yet on payments.bkm.confirmations.",
              q("max(kopru_payments_outbox_backlog)", "unpublished"), width=6),
            p("Oldest unpublished outcome", "Age of the oldest outbox row.",
              q("max(kopru_payments_outbox_oldest_seconds)", "oldest"), kind="stat", unit="s",
              width=6),
            p("Outcomes published by path", "Directly after recording, or by the relay.",
              q("sum by (path) (rate(kopru_bkm_outcomes_published_total[5m])) * 60", "{{path}}")),
            p("Reconciliation (QueryPaymentResult) by result (1 h)",
              "agrees: the query found what we recorded; disagrees: it found otherwise.",
              q("sum by (result) (increase(kopru_bkm_reconciliations_total[1h]))", "{{result}}"),
              kind="stat"),
            p("Conditions needing a human (1 h)",
              "Altered replays, late failures, query disagreements, Moka auth failures.",
              q("sum by (kind) (increase(kopru_payments_alerts_total[1h]))", "{{kind}}"),
              kind="stat"),
        )),
        RowSpec("Moka", (
            p("Moka dealer applications by outcome (1 h)", "Outcomes of CreateMokaPosRequest.",
              q("sum by (outcome) (increase(kopru_moka_applications_total[1h]))", "{{outcome}}"),
              kind="stat", width=24),
        )),
    ),
)  # fmt: skip

PLATFORM = DashboardSpec(
    "kopru-platform",
    "kopru: platform (topics, consumers, dead letters)",
    "Per topic traffic, consumer lag, dead letters, retry tiers and the services' health.",
    (
        RowSpec("Topics", (
            p("Messages in per topic (consumed, per second)", "Settled by kopru consumers.",
              q("sum by (topic) (rate(kopru_messages_total[5m]))", "{{topic}}")),
            p("Messages out per topic (published, per second)", "Events kopru published.",
              q("sum by (topic) (rate(kopru_events_published_total[5m]))", "{{topic}}")),
            p("Consumer lag per group and topic", "High-water mark minus committed offset.",
              q("sum by (group, topic) (kopru_consumer_lag)", "{{group}} {{topic}}")),
            p("Settled by outcome", "done, retry, dead_letter per service.",
              q("sum by (service, outcome) (rate(kopru_messages_total[5m]))",
                "{{service}} {{outcome}}")),
        )),
        RowSpec("Dead letters and retries", (
            p("Dead-letter topic depth", "Messages held in each <topic>.dlq.",
              q("max by (topic) (kopru_dlq_depth)", "{{topic}}")),
            p("Dead letters per minute", "By service, topic and error type.",
              q("sum by (service, topic, error_type) (rate(kopru_dead_letters_total[5m])) * 60",
                "{{service}} {{topic}} {{error_type}}")),
            p("Retry tier traffic (per second)", "Messages sent to each retry tier.",
              q("sum by (topic, tier) (rate(kopru_retries_total[5m]))", "{{topic}} {{tier}}")),
            p("Partitions waiting on a delayed message", "Paused until the message is due.",
              q("sum by (kopru_service) (kopru_delayed_partitions)", "{{kopru_service}}")),
        )),
        RowSpec("Services", (
            p("/readyz per service", "1: every readiness check passes.",
              q("min by (kopru_service) (kopru_ready)", "{{kopru_service}}"), kind="stat"),
            p("Failing readiness checks", "Checks answering 0 (what /readyz lists as failed).",
              q("min by (kopru_service, check) (kopru_readiness_check) == 0",
                "{{kopru_service}} {{check}}"), kind="table"),
            p("Scrape up", "Prometheus reaches the service's /metrics.",
              q('min by (kopru_service) (up{kopru_service!=""})', "{{kopru_service}}"),
              kind="stat", width=24),
        )),
    ),
)  # fmt: skip

DASHBOARDS: tuple[DashboardSpec, ...] = (REPORTS, PAYMENTS, PLATFORM)


def expressions() -> list[str]:
    return [
        query.expr
        for d in DASHBOARDS
        for row in d.rows
        for panel in row.panels
        for query in panel.queries
    ]
