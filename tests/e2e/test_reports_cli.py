"""`kopru report request --wait`, `kopru report status` and `kopru auth reset` as real
commands against the running pipeline."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ReportSystem, run_kopru

pytestmark = pytest.mark.e2e


async def test_report_request_wait_status_and_auth_reset(report_system: ReportSystem) -> None:
    await report_system.start()
    code, out = await run_kopru(
        report_system, "report", "request", "--date", "2025-05-05", "--file-type", "csv",
        "--request-id", "cli-1", "--wait", "--timeout-s", "60",
    )  # fmt: skip
    assert code == 0, out
    assert "submitted: refId" in out and "ready after" in out
    assert "completed: 300 rows" in out
    code, out = await run_kopru(report_system, "report", "status", "cli-1")
    assert code == 0, out
    assert "request: ReportSubmitted" in out and "content: ReportCompleted" in out
    code, out = await run_kopru(
        report_system, "auth", "reset", "--member", "TIB", "--sender", "TIB991"
    )
    assert code == 0 and "reset" in out, out
