"""The figures of a finished run: every topic read once, counted (chaos.accounting) and
scanned (chaos.secrets_scan); rows for the table and the verdict for the last line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from chaos import faults
from chaos.accounting import (
    dead_lettered,
    duplicate_submissions,
    passed_after_bad,
    replay_figures,
    tally,
)
from chaos.load import Confirmation
from chaos.report import Verdict
from chaos.secrets_scan import Hit, Needles, scan, scan_logs, summary
from chaos.system import System
from chaos.topics import Record, read_all, topic_names
from schemas.events import (
    BKM_CONFIRMATIONS,
    BKM_INITIALIZED,
    MOKA_APPLICATION_RESULTS,
    REPORTS_COMPLETED,
    REPORTS_FAILED,
    REPORTS_SUBMITTED,
    ReportRequested,
)

Row = tuple[str, str, object]


@dataclass
class Run:
    system: System
    requests: list[ReportRequested]
    confirmations: list[Confirmation]
    injected: list[faults.Injected]
    stuck: dict[str, list[tuple[str, int, int]]]
    committed: dict[str, dict[tuple[str, int], int]]


def decode(records: list[Record], topic: str) -> list[dict[str, Any]]:
    out = []
    for r in records:
        if r.topic != topic:
            continue
        try:
            value = json.loads(r.value)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


async def measure(run: Run, rows: list[Row]) -> Verdict:
    system = run.system
    assert system.kafka is not None
    names = await topic_names(system.bootstrap)
    records = await read_all(system.kafka, names, timeout_s=300)
    terminal = decode(records, REPORTS_COMPLETED.name) + decode(records, REPORTS_FAILED.name)
    confirmed = decode(records, BKM_CONFIRMATIONS.name)
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.get(system.mkk_url + "/_sandbox/requests?endpoint=balance-report")
        journal = resp.json()["requests"]
    rep = tally([r.request_id for r in run.requests], terminal, "request_id")
    conf = tally([c.token for c in run.confirmations], confirmed, "token")
    dup_sub = duplicate_submissions(journal, decode(records, REPORTS_SUBMITTED.name), terminal)
    replays = replay_figures(run.confirmations)
    rows += [
        ("reports", "requested", len(run.requests)),
        ("reports", "with a terminal event", rep.done),
    ]
    rows += [("reports", k, v) for k, v in sorted(rep.outcomes.items())]
    rows += [
        ("reports", "lost", rep.lost),
        ("reports", "duplicate terminal events", rep.duplicates),
        ("reports", "same event seen again (copies)", rep.copies),
        ("mkk", "balance-report calls", len(journal)),
        ("mkk", "accepted (0000)", sum(j.get("response_code") == "0000" for j in journal)),
        ("mkk", "duplicate submissions", dup_sub),
        ("confirmations", "confirmations", len(run.confirmations)),
        ("confirmations", "with their event", conf.done),
    ]
    rows += [("confirmations", k, v) for k, v in sorted(conf.outcomes.items())]
    rows += [
        ("confirmations", "lost", conf.lost),
        ("confirmations", "duplicate events", conf.duplicates),
        ("confirmations", "same event seen again (copies)", conf.copies),
    ]
    rows += [("confirmations", k, v) for k, v in replays.items()]
    not_dead, blocked = _bad_records(run, records, terminal, rows)
    n_stuck = sum(len(v) for v in run.stuck.values())
    for group, parts in run.stuck.items():
        rows += [("stuck", f"{group} {t}[{p}]", f"lag {lag}") for t, p, lag in parts]
    rows.append(("kafka", "topics / records read", f"{len(names)} / {len(records)}"))
    rows.append(("kafka", "stuck partitions", n_stuck))
    alive, dead = system.alive()
    rows.append(
        ("system", "processes alive at the end", f"{alive}/{len(system.procs)} {dead or ''}")
    )
    hits = _scan(run, records, rows)
    if rep.missing or conf.missing:
        rows.append(("lost", "e.g.", ", ".join((rep.missing + conf.missing)[:5])))
    return Verdict(
        reports_done=rep.done,
        reports=len(run.requests),
        confirmations_done=conf.done,
        confirmations=len(run.confirmations),
        lost=rep.lost + conf.lost,
        duplicate_submissions=dup_sub,
        # Strict: a copy (the same event_id published again) counts too, though
        # downstream would drop it by its id.
        duplicate_events=rep.duplicates + conf.duplicates + rep.copies + conf.copies,
        stuck_partitions=n_stuck + blocked,
        secrets=len(hits),
        replay_mismatches=replays["replay mismatches"],
        bad_records_not_dead_lettered=not_dead,
    )


def _bad_records(
    run: Run, records: list[Record], terminal: list[dict[str, Any]], rows: list[Row]
) -> tuple[int, int]:
    """(bad records without a DLQ entry, partitions blocked by them); rows for each."""
    _reader_topics(run, rows)
    bad = [i for i in run.injected if i.kind != "canary" and i.topic in faults.INPUT_TOPICS]
    coords = [(i.topic, i.partition, i.offset) for i in bad]
    dlq_headers = [r.headers for r in records if r.topic.endswith(".dlq")]
    dead = dead_lettered(coords, dlq_headers)
    for kind, _ in faults.BAD_RECORDS:
        mine = [(i.topic, i.partition, i.offset) for i in bad if i.kind == kind]
        n = sum(c in dead for c in mine)
        rows.append(("bad records", f"{kind}: dead-lettered / injected", f"{n}/{len(mine)}"))
    refs = sum(h.get("x-dlq-reference") == "true" for h in dlq_headers)
    rows.append(("bad records", "DLQ entries / of them references", f"{len(dlq_headers)}/{refs}"))
    seen = [(r.topic, r.partition, r.offset) for r in records]
    after = passed_after_bad(coords, seen, run.committed)
    blocked = 0
    for (t, p), (good, passed) in sorted(after.items()):
        blocked += not passed
        verdict = "processed" if passed else "BLOCKED"
        rows.append(("bad records", f"{t}[{p}] good records after", f"{good}, {verdict}"))
    canary_ids = {i.topic: i for i in run.injected if i.kind == "canary"}
    done = {e.get("request_id") for e in terminal} | {
        e.get("order_id") for e in decode(records, BKM_INITIALIZED.name)
    }
    done |= {e.get("application_id") for e in decode(records, MOKA_APPLICATION_RESULTS.name)}
    ids = [
        str(v.get("request_id") or v.get("order_id") or v.get("application_id"))
        for r in records
        for i in canary_ids.values()
        if (r.topic, r.partition, r.offset) == (i.topic, i.partition, i.offset)
        for v in [json.loads(r.value)]
        if v.get("event_type") != "TokenRequested"
    ]
    rows.append(
        (
            "bad records",
            "canaries after them with an outcome",
            f"{sum(i in done for i in ids)}/{len(ids)}",
        )
    )
    return len(bad) - len(dead), blocked


def _reader_topics(run: Run, rows: list[Row]) -> None:
    """Bad records on topics read without a group: skipped and logged by each reader."""
    for topic in faults.READER_TOPICS:
        n = sum(i.topic == topic and i.kind != "canary" for i in run.injected)
        skipped = sum(
            log.read_bytes().count(b"unreadable event on the token topic")
            for log in run.system.service_logs()
            if log.exists()
        )
        rows.append(
            (
                "bad records",
                f"{topic} (no group, no DLQ)",
                f"{n} bad records; token-cache warnings 'unreadable event': {skipped}",
            )
        )


def _scan(run: Run, records: list[Record], rows: list[Row]) -> list[Hit]:
    sec = run.system.secrets
    assert sec is not None
    needles = Needles.build(
        mkk_password=sec.mkk_password,
        other_secrets={
            "token key": sec.token_key,
            "zip key": sec.zip_key,
            "pos password": sec.pos_password,
            "moka password": sec.moka_password,
        },
        zip_key=sec.zip_key,
        requests=[(r.member, r.request_id) for r in run.requests],
        private_keys=sec.private_keys,
    )
    hits: list[Hit] = []
    lines = scan_logs(run.system.service_logs(), needles, hits)
    for r in records:
        head = " ".join(f"{k}={v}" for k, v in r.headers.items()).encode()
        data = r.value + b"\n" + (r.key or b"") + b"\n" + head
        scan(data, f"{r.topic}[{r.partition}]@{r.offset}", needles, hits)
    rows.append(("secrets", "log lines / records scanned", f"{lines} / {len(records)}"))
    rows += [("secrets", kind, n) for kind, n in sorted(summary(hits).items())]
    rows += [("secrets", "e.g. " + h.kind, f"{h.where} {h.sample}") for h in hits[:10]]
    return hits
