"""`kopru report request|status|resolve|retry`: ask for a balance report, follow it, see
where it is, and settle a request that ended at the request stage
(services/report_requester/operator.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import typer
from aiokafka import TopicPartition

from schemas.codes import KOPRU_CODES
from schemas.events import (
    REPORTS_COMPLETED,
    REPORTS_FAILED,
    REPORTS_READY,
    REPORTS_REQUESTED,
    REPORTS_ROWS,
    REPORTS_SUBMITTED,
    BalanceReportFilters,
    BalanceRowsBatch,
    Event,
    ReportCompleted,
    ReportFailed,
    ReportReady,
    ReportRequested,
    ReportSubmitted,
    TopicSpec,
    topic,
)
from services.cli.publishing import publish_one, run_or_exit
from services.common.kafka.clients import new_consumer
from services.common.settings import BaseServiceSettings, KafkaSettings, load_settings
from services.common.stores.factory import open_state_store

report_app = typer.Typer(
    help="Balance reports (MKK §5-§6) through the pipeline.", no_args_is_help=True
)
WATCHED = [REPORTS_SUBMITTED, REPORTS_READY, REPORTS_ROWS, REPORTS_COMPLETED, REPORTS_FAILED]


async def publish_request(kafka: KafkaSettings, event: ReportRequested) -> None:
    await publish_one(kafka, REPORTS_REQUESTED, event)


def describe(ev: Event) -> str | None:
    if isinstance(ev, ReportSubmitted):
        return f"submitted: refId {ev.ref_id} (senderReference {ev.sender_reference})"
    if isinstance(ev, ReportReady):
        return f"ready after {ev.polls} polls: {', '.join(ev.file_names)}"
    if isinstance(ev, ReportCompleted):
        if ev.no_data:
            return "completed: the query has no data (RP026)"
        files = ", ".join(f"{f.file_name} {f.rows} rows" for f in ev.files)
        return f"completed: {ev.total_rows} rows ({files})"
    if isinstance(ev, ReportFailed):
        return f"FAILED at {ev.stage}: {ev.code} {ev.description}"
    return None


async def follow(
    kafka: KafkaSettings,
    member: str,
    request_id: str,
    *,
    timeout_s: float,
    on_event: Any,
) -> Event | None:
    """Read the pipeline's topics from the beginning; call on_event for this request's
    events until its terminal event (or the timeout)."""
    consumer = new_consumer(kafka, fetch_max_wait_ms=200)
    await consumer.start()
    key = f"{member}:{request_id}".encode()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t.name, p)
            for t in WATCHED
            for p in sorted(consumer.partitions_for_topic(t.name) or [])
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                for rec in records:
                    if rec.key != key:
                        continue
                    ev = topic(tp.topic).parse(rec.value)
                    on_event(ev)
                    if isinstance(ev, ReportCompleted | ReportFailed):
                        return ev
        return None
    finally:
        await consumer.stop()


@report_app.command("request")
def request_command(
    member: str = typer.Option("TIB", help="MKK member code (senderMember, §3.2)"),
    sender: str = typer.Option("TIB991", help="MKK user (sender, §3.2)"),
    process_date: str = typer.Option(
        date.today().isoformat(), "--date", help="processDate, today or past (§5.1.2)"
    ),
    file_type: str = typer.Option("csv", help="json or csv (§5.1.2)"),
    request_id: str = typer.Option("", help="upstream request id (default: a new one)"),
    sub_acc_no: str | None = typer.Option(None),
    isin: str | None = typer.Option(None),
    sec_class: str | None = typer.Option(None),
    sec_type: str | None = typer.Option(None),
    acc_class: str | None = typer.Option(None),
    portfolio_code: str | None = typer.Option(None),
    acc_no: str | None = typer.Option(None),
    wait: bool = typer.Option(False, help="follow each step and the rows until completion"),
    timeout_s: float = typer.Option(600.0, help="how long --wait waits"),
) -> None:
    """Publish a ReportRequested; with --wait, show each step and the rows as they come."""
    settings = load_settings(BaseServiceSettings)
    event = ReportRequested(
        request_id=request_id or f"cli-{uuid.uuid4().hex[:12]}",
        member=member,
        sender=sender,
        process_date=date.fromisoformat(process_date),
        file_type=file_type,  # type: ignore[arg-type]
        filters=BalanceReportFilters(
            sub_acc_no=sub_acc_no,
            isin=isin,
            sec_class=sec_class,
            sec_type=sec_type,
            acc_class=acc_class,
            portfolio_code=portfolio_code,
            acc_no=acc_no,
        ),
    )
    run_or_exit(publish_request(settings.kafka, event))
    typer.echo(f"requested {event.request_id} ({member}, {event.process_date}, {file_type})")
    if not wait:
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}")) as progress:
        task = progress.add_task("rows published: 0", total=None)
        rows = {"n": 0}
        seen: set[tuple[str, int]] = set()

        def on_event(ev: Event) -> None:
            if isinstance(ev, BalanceRowsBatch):
                if (ev.file_name, ev.seq) not in seen:
                    seen.add((ev.file_name, ev.seq))
                    rows["n"] += len(ev.rows)
                    progress.update(task, description=f"rows published: {rows['n']}")
                return
            text = describe(ev)
            if text:
                progress.console.print(text)

        last = asyncio.run(
            follow(settings.kafka, member, event.request_id, timeout_s=timeout_s, on_event=on_event)
        )
    if last is None:
        typer.echo("no outcome yet (timeout); see `kopru report status`", err=True)
        raise typer.Exit(2)
    if isinstance(last, ReportFailed):
        raise typer.Exit(1)


async def _status(settings: BaseServiceSettings, member: str, request_id: str) -> list[str]:
    store = open_state_store(settings.store)
    await store.open()
    key = f"{member}:{request_id}"
    lines: list[str] = []
    try:
        for scope, stage in (
            ("report-request", "request"),
            ("report-poll", "status"),
            ("report-content", "content"),
        ):
            rec = await store.get(scope, key)
            if rec is None:
                continue
            for h in rec.get("history", []):  # the operator's resolve / retry steps
                lines.append(_history_line(h))
            outcome = (rec.get("outcome") or {}).get("event") or {}
            if outcome:
                what = outcome.get("event_type")
                extra = outcome.get("code") or outcome.get("ref_id") or ""
                lines.append(f"{stage}: {what} {extra}".rstrip())
                if extra in KOPRU_CODES:  # kopru's own code: what it means, what to do
                    lines.append(f"  {KOPRU_CODES[extra]}")
            elif stage == "request":
                gen = f", generation {rec['generation']}" if rec.get("generation") else ""
                lines.append(f"request: {rec.get('phase')} (sends {rec.get('sends')}{gen})")
            elif stage == "status":
                lines.append(f"status: polling, {rec.get('polls', 0)} polls so far")
            else:
                lines.append(f"content: {len(rec.get('files', {}))} file(s) published so far")
    finally:
        await store.close()
    return lines


@report_app.command("status")
def status_command(
    request_id: str = typer.Argument(..., help="the upstream request id"),
    member: str = typer.Option("TIB", help="MKK member code"),
) -> None:
    """Where a request is: request, status polling, content, or its outcome."""
    settings = load_settings(BaseServiceSettings)
    lines = asyncio.run(_status(settings, member, request_id))
    if not lines:
        typer.echo(f"{member}:{request_id}: not seen by the pipeline (yet)")
        raise typer.Exit(1)
    for line in lines:
        typer.echo(line)


def _history_line(h: dict[str, Any]) -> str:
    what = f"{h.get('event_type')} {h.get('code') or ''}".rstrip()
    then = h.get("then")
    if then == "resolved":
        then = f"resolved by operator with refId {h.get('ref_id')}"
    elif then == "retried":
        then = f"retried by operator as generation {int(h.get('generation', 0)) + 1}"
    return (
        f"request (generation {h.get('generation', 0)}): {what} "
        f"(senderReference {h.get('sender_reference')}); {then} at {h.get('at')}"
    )


async def _operate(settings: BaseServiceSettings, action: str, member: str, request_id: str,
                   ref_id: str | None) -> str:  # fmt: skip
    from services.report_requester import operator

    store = open_state_store(settings.store)
    await store.open()
    now = datetime.now(UTC)
    try:
        if action == "resolve":
            assert ref_id is not None

            async def publish(spec: TopicSpec, event: Event) -> None:
                await publish_one(settings.kafka, spec, event)

            return await operator.resolve(store, publish, member, request_id, ref_id, now)

        async def publish_req(event: ReportRequested) -> None:
            await publish_request(settings.kafka, event)

        return await operator.retry(store, publish_req, member, request_id, now)
    finally:
        await store.close()


def _run_operator(action: str, member: str, request_id: str, ref_id: str | None = None) -> None:
    from services.report_requester.operator import OperatorError

    settings = load_settings(BaseServiceSettings)
    try:
        typer.echo(run_or_exit(_operate(settings, action, member, request_id, ref_id)))
    except OperatorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@report_app.command("resolve")
def resolve_command(
    request_id: str = typer.Argument(..., help="the upstream request id"),
    ref_id: str = typer.Option(..., "--ref-id", help="the refId MKK gave for its reference"),
    member: str = typer.Option("TIB", help="MKK member code"),
) -> None:
    """Go on with an ambiguous request (KOPRU_AMBIGUOUS) under the refId learnt from MKK:
    status polling and content follow. Twice with the same refId is done once."""
    _run_operator("resolve", member, request_id, ref_id)


@report_app.command("retry")
def retry_command(
    request_id: str = typer.Argument(..., help="the upstream request id"),
    member: str = typer.Option("TIB", help="MKK member code"),
) -> None:
    """Request again, deliberately, under a NEW senderReference (a request that failed
    before MKK gave a refId). Twice for the same failure is done once."""
    _run_operator("retry", member, request_id)
