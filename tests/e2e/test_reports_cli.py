"""`kopru report request --wait`, `kopru report status` and `kopru auth reset` as real
commands against the running pipeline."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.e2e.conftest import ROOT, ReportSystem

pytestmark = pytest.mark.e2e


async def _kopru(system: ReportSystem, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args,
        cwd=ROOT, env={**os.environ, **system.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode()


async def test_report_request_wait_status_and_auth_reset(report_system: ReportSystem) -> None:
    await report_system.start()
    code, out = await _kopru(
        report_system, "report", "request", "--date", "2025-05-05", "--file-type", "csv",
        "--request-id", "cli-1", "--wait", "--timeout-s", "60",
    )  # fmt: skip
    assert code == 0, out
    assert "submitted: refId" in out and "ready after" in out
    assert "completed: 300 rows" in out
    code, out = await _kopru(report_system, "report", "status", "cli-1")
    assert code == 0, out
    assert "request: ReportSubmitted" in out and "content: ReportCompleted" in out
    code, out = await _kopru(
        report_system, "auth", "reset", "--member", "TIB", "--sender", "TIB991"
    )
    assert code == 0 and "reset" in out, out
