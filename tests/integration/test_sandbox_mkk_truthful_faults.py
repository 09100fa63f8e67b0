"""The MKK sandbox never tells a story MKK could not (§5.1.2, §5.1.5).

An answer without a messageId means the message never reached MKS, so it can never
follow a state change: no report created, no reference burnt. The real report-requester
(its handler, the MKK client, signing and verification) drives the sandbox served on
loopback, under injected faults; redelivery is the handler called again with the next
attempt, as the delivery layer does. The sandbox's own records are the judge.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from schemas.events import ReportFailed, ReportRequested, ReportSubmitted
from schemas.mkk import AuthRequest, BalanceReportRequest, RequestHeader
from services.common.errors import RetryLater
from services.common.kafka.local_broker import free_port
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.client import MkkClient
from services.common.mkk.outcome import MkkOutcome, MkkTransportError
from services.common.mkk.settings import MkkApiSettings
from services.common.mkk.token_cache import CachedToken
from services.common.signing.jws import JwsSigner, JwsVerifier
from services.common.stores.state import MemoryStateStore
from services.report_requester.handler import AMBIGUOUS, RequesterDeps, handle_requested
from services.sandbox.mkk import create_app, sandbox_state
from services.sandbox.mkk.config import DEMO_PASSWORD, FaultConfig, load_config
from services.sandbox.mkk.keys import ensure_demo_keys, load_certificate, load_private_key
from services.sandbox.mkk.state import SandboxState

MAX_ATTEMPTS = 40


@dataclass
class Sandbox:
    url: str
    state: SandboxState
    member_key: Path
    mkk_certificate: Path


@contextmanager
def served_sandbox(state_dir: Path) -> Iterator[Sandbox]:
    """The sandbox app on a loopback port (uvicorn in a thread): a dropped answer is a
    real connection cut, as the client sees it in production."""
    keys = ensure_demo_keys(state_dir)
    config = load_config(None, state_dir=state_dir)
    config.durations.rp020_s = config.durations.rp021_s = 0.0
    config.durations.rp022_s = config.durations.rp023_s = 0.0
    config.ledger.rows = 5
    config.report_lock = "off"
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox did not start")
        time.sleep(0.02)
    try:
        yield Sandbox(
            f"http://127.0.0.1:{port}", sandbox_state(app), keys.member_key, keys.mkk_certificate
        )
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Outcome:
    """What the requester published per request, and which references it sent."""

    events: dict[str, list[Any]] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # senderReference -> request


async def drive_requester(sandbox: Sandbox, requests: list[ReportRequested]) -> Outcome:
    """Each request through the real requester until it ends (or MAX_ATTEMPTS)."""
    client = MkkClient(
        MkkApiSettings(base_url=sandbox.url, read_timeout_s=10),
        JwsSigner(load_private_key(sandbox.member_key)),
        JwsVerifier(load_certificate(sandbox.mkk_certificate)),
    )
    out = Outcome()
    current: list[str] = [""]
    tokens = [0]

    async def get_token(member: str, sender: str) -> CachedToken:
        for _ in range(MAX_ATTEMPTS):  # auth may be hit by the faults too
            tokens[0] += 1
            head = RequestHeader(sender_reference=f"AUTH-{tokens[0]}-{time.time_ns()}",
                                 sender_member=member, sender=sender)  # fmt: skip
            try:
                auth = AuthRequest(
                    request_header=head, username=sender, password=SecretStr(DEMO_PASSWORD)
                )
                res = await client.auth(auth)
            except MkkTransportError:
                continue
            if res.token:
                now = datetime.now(UTC)
                return CachedToken(str(tokens[0]), now + timedelta(hours=1), now, res.token)
        raise AssertionError("no token from the sandbox")

    async def rejected_token(member: str, sender: str, jti: str) -> CachedToken:
        return await get_token(member, sender)

    async def send(req: BalanceReportRequest, token: str) -> MkkOutcome:
        out.references[req.request_header.sender_reference] = current[0]
        return await client.balance_report(req, token)

    async def publish(spec: Any, event: Any) -> None:
        out.events.setdefault(event.request_id, []).append(event)

    deps = RequesterDeps(
        state=MemoryStateStore(),
        publish=publish,
        get_token=get_token,
        rejected_token=rejected_token,
        send=send,
        zip_secret="truthful-sandbox",
        service_hours=False,
        max_attempts=MAX_ATTEMPTS,
        backoff=Backoff(base_s=0.001, cap_s=0.001),
        today=sandbox.state.today,
    )
    await client.start()
    try:
        for ev in requests:
            current[0] = ev.request_id
            # A cut connection leaves the outcome unknown and is retried without bound
            # (the same reference again); every other outcome counts to MAX_ATTEMPTS.
            for attempt in range(5 * MAX_ATTEMPTS):
                try:
                    await handle_requested(ev, attempt, deps)
                    break
                except RetryLater:
                    continue
    finally:
        await client.close()
    return out


def report_requests(n: int, prefix: str) -> list[ReportRequested]:
    return [
        ReportRequested(request_id=f"{prefix}-{i}", member="TIB", sender="TIB991",
                        process_date=date(2025, 5, 5), file_type="csv")
        for i in range(n)
    ]  # fmt: skip


def check_one_report_per_request(sandbox: Sandbox, out: Outcome, requests: list[str]) -> None:
    """Exactly one report per request kopru submitted (its refId), none for a request
    it failed unless it said so (KOPRU_AMBIGUOUS names the reference), and no report in
    the sandbox that no request's balance-report call created."""
    state = sandbox.state
    created: dict[str, list[str]] = {}  # request -> refIds the sandbox created for it
    for rec in state.requests:
        if rec.endpoint == "balance-report" and rec.response_code == "0000" and rec.ref_id:
            request = out.references[str(rec.sender_reference)]
            created.setdefault(request, []).append(rec.ref_id)
    several = {request: refs for request, refs in created.items() if len(refs) > 1}
    assert not several, f"several reports for one request: {several}"
    every_ref = [r for refs in created.values() for r in refs]
    assert sorted(every_ref) == sorted(state.reports.reports), "a report no call accounts for"
    for request in requests:
        events = out.events.get(request, [])
        assert len(events) == 1, f"{request}: {events}"
        [event] = events
        refs = created.get(request, [])
        if isinstance(event, ReportSubmitted):
            assert refs == [event.ref_id], f"{request}: reports {refs}, submitted {event.ref_id}"
        else:
            assert isinstance(event, ReportFailed)
            assert len(refs) <= 1, f"{request}: reports {refs}"
            if refs:  # the answer was lost after MKK made it: the operator is told
                assert event.code == AMBIGUOUS, f"{request}: orphan report {refs} ({event.code})"
        no_mid = [r for r in state.requests if r.sender_reference in _refs_of(out, request)
                  and r.endpoint == "balance-report" and not r.has_message_id]  # fmt: skip
        assert not any(r.ref_id for r in no_mid), f"{request}: answer without messageId, report"


def _refs_of(out: Outcome, request: str) -> set[str]:
    return {ref for ref, req in out.references.items() if req == request}


def test_issue_scenario_drop_after_and_no_message_id_never_two_reports(tmp_path: Path) -> None:
    """Issue 13: drop_rate 0.1 (after), no_message_id_rate 0.3, seed 11, 40 requests made
    two reports for one request: the sandbox created a report, then answered without a
    messageId, and kopru rightly re-sent the same reference."""
    with served_sandbox(tmp_path / "sandbox") as sandbox:
        sandbox.state.set_faults(
            FaultConfig(seed=11, drop_rate=0.1, drop_phase="after", no_message_id_rate=0.3)
        )
        requests = report_requests(40, "issue13")
        out = asyncio.run(drive_requester(sandbox, requests))
        check_one_report_per_request(sandbox, out, [r.request_id for r in requests])


FAULT_MIXES = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31),
        "endpoints": st.sampled_from([["balance-report"], ["auth", "balance-report"]]),
        "http500_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "latency_ms": st.sampled_from([0.0, 2.0]),
        "latency_jitter_ms": st.sampled_from([0.0, 3.0]),
        "drop_rate": st.sampled_from([0.0, 0.1, 0.3, 0.5]),
        "drop_phase": st.sampled_from(["before", "after"]),
        "no_message_id_rate": st.sampled_from([0.0, 0.1, 0.3, 0.6]),
        "token_reject_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "report_error_rate": st.sampled_from([0.0, 0.2]),
    }
)


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with served_sandbox(tmp_path_factory.mktemp("sandbox")) as sandbox:
        yield sandbox


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(faults=FAULT_MIXES, n=st.integers(1, 6))
def test_requester_against_random_fault_mixes_one_report_per_request(
    shared_sandbox: Sandbox, faults: dict[str, Any], n: int
) -> None:
    shared_sandbox.state.reset()
    shared_sandbox.state.set_faults(FaultConfig.model_validate(faults))
    requests = report_requests(n, f"prop-{faults['seed']}")
    out = asyncio.run(drive_requester(shared_sandbox, requests))
    check_one_report_per_request(shared_sandbox, out, [r.request_id for r in requests])
