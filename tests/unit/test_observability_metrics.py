"""The metrics behind the dashboards and alerts move when things happen: MKK calls by
endpoint and code, events published, reports in flight, HTTP answers, readiness."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.events import AUTH_TOKENS, REPORTS_READY, ReportReady, TokenIssued
from schemas.mkk import AuthRequest
from services.common.errors import RetryLater
from services.common.mkk.client import MkkClient
from services.common.mkk.outcome import MkkTransportError
from services.common.mkk.settings import MkkApiSettings
from services.common.observability.event_metrics import observe_published
from services.common.observability.health import health_app
from services.common.observability.in_flight import InFlight
from tests.unit.test_mkk_client import head, mkk  # noqa: F401  (the sandbox-backed client)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_mkk_answers_are_counted_by_endpoint_code_and_action(
    mkk: tuple[MkkClient, Any, Any],  # noqa: F811
) -> None:
    client, _, _ = mkk
    labels = {"endpoint": "auth", "code": "0x00d30003", "action": "TERMINAL"}
    before = value("kopru_mkk_calls_total", **labels)
    timed = value("kopru_mkk_call_seconds_count", endpoint="auth")
    await client.auth(
        AuthRequest(request_header=head("m-1"), username="TIB991", password=SecretStr("Wrong99!"))
    )
    assert value("kopru_mkk_calls_total", **labels) == before + 1
    assert value("kopru_mkk_call_seconds_count", endpoint="auth") == timed + 1


async def test_no_answer_counts_as_transport() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = MkkClient(
        MkkApiSettings(base_url="http://mkk.test"), None, None,
        transport=httpx.MockTransport(refuse),
    )  # fmt: skip
    await client.start()
    labels = {"endpoint": "auth", "code": "transport", "action": "RETRY_LATER"}
    before = value("kopru_mkk_calls_total", **labels)
    with pytest.raises(MkkTransportError):
        await client.auth(
            AuthRequest(
                request_header=head("m-2"), username="TIB991", password=SecretStr("Wrong99!")
            )
        )
    await client.close()
    assert value("kopru_mkk_calls_total", **labels) == before + 1


def test_published_events_count_per_topic_and_feed_report_and_token_metrics() -> None:
    now = datetime.now(UTC)
    ready = ReportReady(
        request_id="r-1", member="TIB", sender="TIB991", ref_id="A" * 20, file_type="csv",
        file_names=["a.zip"], polls=7, submitted_at=now,
    )  # fmt: skip
    before = value(
        "kopru_events_published_total", topic=REPORTS_READY.name, event_type="ReportReady"
    )
    polls = value("kopru_report_polls_sum")
    observe_published(REPORTS_READY.name, ready)
    assert (
        value("kopru_events_published_total", topic=REPORTS_READY.name, event_type="ReportReady")
        == before + 1
    )
    assert value("kopru_report_polls_sum") == polls + 7
    expires = now + timedelta(minutes=60)
    token = TokenIssued(
        member="TIB", sender="TIB991", jti="j", issued_at=now, expires_at=expires,
        key_id="k", nonce_b64="bm9uY2U=", ciphertext_b64="Y3Q=",
    )  # fmt: skip
    observe_published(AUTH_TOKENS.name, token)
    got = value("kopru_mkk_token_expiry_timestamp_seconds", member="TIB", sender="TIB991")
    assert got == pytest.approx(expires.timestamp())


def test_reports_in_flight_until_they_leave_the_stage() -> None:
    tracker = InFlight()
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(RetryLater), tracker.tracking("polling", "TIB:1", hour_ago):
        raise RetryLater("RP021", 5.0)  # still pending: stays in flight
    with tracker.tracking("polling", "TIB:2", datetime.now(UTC)):
        pass  # ready: leaves
    with pytest.raises(ValueError), tracker.tracking("polling", "TIB:3", datetime.now(UTC)):
        raise ValueError("poison")  # dead-lettered: leaves
    count, oldest = tracker.snapshot()["polling"]
    assert count == 1
    assert 3590 < oldest < 3700
    # A report no one has seen for longer than a refId lives is forgotten.
    assert tracker.snapshot(now=time.time() + 26 * 3600)["polling"] == (0, 0.0)


async def test_http_answers_are_counted_by_route_and_status_and_metrics_tell_readiness() -> None:
    async def boom(_: Request) -> Response:
        return Response("no", status_code=503)

    async def broken() -> None:
        raise ConnectionError("broker did not answer")

    app = health_app(
        liveness=lambda: [],
        readiness={"kafka": broken},
        routes=[Route("/bkm/confirmation", boom, methods=["POST"])],
    )
    labels = {"route": "/bkm/confirmation", "status": "503"}
    before = value("kopru_http_requests_total", **labels)
    other = value("kopru_http_requests_total", route="other", status="404")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        assert (await http.post("/bkm/confirmation")).status_code == 503
        assert (await http.get("/nowhere")).status_code == 404
        text = (await http.get("/metrics")).text
    assert value("kopru_http_requests_total", **labels) == before + 1
    assert value("kopru_http_requests_total", route="other", status="404") == other + 1
    assert "kopru_ready 0.0" in text
    assert 'kopru_readiness_check{check="kafka"} 0.0' in text
