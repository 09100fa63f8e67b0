"""The demo's report flow: the MKK sandbox and the four report services, then a json
and a csv balance report requested, followed step by step, and summed up."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date, timedelta

from schemas.events import (
    BalanceRowsBatch,
    Event,
    ReportCompleted,
    ReportFailed,
    ReportReady,
    ReportRequested,
    ReportSubmitted,
)
from services.cli.report import describe, follow, publish_request
from services.common.settings import KafkaSettings
from services.demo.context import DemoContext, ProcessSpec
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys

SERVICES = ("auth-token", "report-requester", "status-poller", "content-fetcher")
SANDBOX_CONFIG = """
durations: {rp020_s: 0.5, rp021_s: 0.5, rp022_s: 0.5, rp023_s: 0.5}
ledger: {rows: 20000, files_per_report: 2}
report_lock: "off"
"""


def _kopru(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


def processes(ctx: DemoContext) -> list[ProcessSpec]:
    root = ctx.state_dir / "reports"
    sandbox_dir = root / "mkk"
    root.mkdir(parents=True, exist_ok=True)
    (root / "mkk.yaml").write_text(SANDBOX_CONFIG)
    secrets = root / "secrets"
    secrets.mkdir(exist_ok=True)
    password = secrets / "mkk_password"
    password.write_text(DEMO_PASSWORD)  # the sandbox's demo user; never a real one
    password.chmod(0o600)
    keys = ensure_demo_keys(sandbox_dir)
    port = ctx.port("mkk-sandbox")
    sandbox_url = f"http://127.0.0.1:{port}"
    specs = [
        ProcessSpec(
            "mkk-sandbox",
            _kopru(
                "sandbox",
                "mkk",
                "--port",
                str(port),
                "--state-dir",
                str(sandbox_dir),
                "--config",
                str(root / "mkk.yaml"),
            ),
            {},
            f"{sandbox_url}/_sandbox/info",
        )
    ]
    env = {
        "KOPRU_STORE__URL": f"sqlite:///{root / 'reports.db'}",
        "KOPRU_MKK__BASE_URL": sandbox_url,
        "KOPRU_MKK__SERVICE_HOURS": "false",  # the sandbox is open all day
        "KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE": str(keys.member_key),
        "KOPRU_MKK_SIGNING__MKK_CERTIFICATE_FILE": str(keys.mkk_certificate),
        "KOPRU_MKK_AUTH__PASSWORD_FILE": str(password),
        "KOPRU_POLLER__BACKOFF_BASE_S": "1",
        "KOPRU_POLLER__BACKOFF_CAP_S": "5",
        "KOPRU_FETCHER__BATCH_SIZE": "2000",
        "KOPRU_FETCHER__TMP_DIR": str(root / "tmp"),
    }
    for name in SERVICES:
        p = ctx.port(name)
        specs.append(
            ProcessSpec(
                name,
                _kopru("run", name),
                {**env, "KOPRU_HTTP__PORT": str(p)},
                f"http://127.0.0.1:{p}/readyz",
            )
        )
    return specs


async def _one(ctx: DemoContext, kafka: KafkaSettings, ev: ReportRequested) -> dict[str, object]:
    t0 = time.monotonic()
    marks: dict[str, float] = {}
    rows = {"n": 0, "last": 0}

    def on_event(e: Event) -> None:
        now = time.monotonic() - t0
        if isinstance(e, BalanceRowsBatch):
            rows["n"] += len(e.rows)
            if rows["n"] - rows["last"] >= 5000:
                rows["last"] = rows["n"]
                ctx.say(f"  [{ev.file_type}] {now:5.1f}s rows published: {rows['n']}")
            return
        kind = {
            ReportSubmitted: "submitted",
            ReportReady: "ready",
            ReportCompleted: "completed",
            ReportFailed: "failed",
        }.get(type(e))
        if kind:
            marks[kind] = now
        text = describe(e)
        if text:
            ctx.say(f"  [{ev.file_type}] {now:5.1f}s {text}")

    await publish_request(kafka, ev)
    ctx.say(f"  [{ev.file_type}] requested {ev.request_id}")
    last = await follow(kafka, ev.member, ev.request_id, timeout_s=180, on_event=on_event)
    return {"event": last, "marks": marks, "total_s": time.monotonic() - t0}


async def run(ctx: DemoContext) -> None:
    ctx.say("== MKK balance reports (sandbox): one json, one csv ==")
    kafka = KafkaSettings(bootstrap_servers=ctx.bootstrap)
    day = date.today() - timedelta(days=1)
    stamp = int(time.time())
    reqs = [
        ReportRequested(
            request_id=f"demo-{t}-{stamp}",
            member="TIB",
            sender="TIB991",
            process_date=day,
            file_type=t,
        )
        for t in ("json", "csv")
    ]
    results = await asyncio.gather(*(_one(ctx, kafka, r) for r in reqs))
    ctx.say("== summary ==")
    for req, res in zip(reqs, results, strict=True):
        ev = res["event"]
        marks: dict[str, float] = res["marks"]  # type: ignore[assignment]
        if isinstance(ev, ReportCompleted):
            files = ", ".join(f"{f.file_name} ({f.rows} rows, {f.zip_bytes} B)" for f in ev.files)
            ctx.say(f"{req.file_type}: {ev.total_rows} rows in {len(ev.files)} files: {files}")
            sub = marks.get("submitted", 0.0)
            ready = marks.get("ready", sub)
            ctx.say(
                f"   request -> submitted {sub:.1f}s, MKK preparing (polls) "
                f"{ready - sub:.1f}s, download {ev.durations_s.get('download', 0):.2f}s, "
                f"decrypt+parse+publish {ev.durations_s.get('publish', 0):.2f}s, "
                f"total {res['total_s']:.1f}s"
            )
        elif isinstance(ev, ReportFailed):
            ctx.say(f"{req.file_type}: FAILED {ev.code} {ev.description}")
        else:
            ctx.say(f"{req.file_type}: no outcome within the demo's time")


__all__ = ["processes", "run"]
