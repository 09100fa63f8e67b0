"""`kopru demo` (what `make demo` runs, on tansu) completes its flows and leaves nothing
behind; `kopru demo --engine kafka` too, so both engines run the whole system."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.engines("tansu", "kafka")
def test_demo_runs_every_flow_and_stops_everything(
    tmp_path: Path, broker_engine: str, request: pytest.FixtureRequest
) -> None:
    if broker_engine == "kafka":
        request.getfixturevalue("kafka_dist")  # skips locally without Java / Maven
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--engine", broker_engine],
        env={**os.environ, "KOPRU_DEMO_DIR": str(tmp_path / "demo")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    assert "topics created" in out
    assert "demo finished" in out and "everything stopped" in out
    # The reports flow: a json and a csv report, each submitted to the MKK sandbox,
    # polled until ready and completed with all its rows published.
    for kind in ("csv", "json"):
        assert re.search(rf"\[{kind}\] +[0-9.]+s submitted: refId \w{{20}}", out), out[-4000:]
        assert re.search(rf"\[{kind}\] +[0-9.]+s completed: [1-9][0-9]* rows", out), out[-4000:]
    # The payments flow: one confirmation published once, the replay ignored.
    assert "payments.bkm.confirmations: 1 event(s)" in out
    assert "CreateMokaPosRequest: created" in out
    # No broker, sandbox or service process is left running.
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before
    logs = list((tmp_path / "demo" / "logs").glob("*.log"))
    assert logs, "each demo process writes a log file"
