"""A few report requests through the whole pipeline: real broker, real HTTP sandbox."""

from __future__ import annotations

import pytest

from schemas.events import ReportCompleted
from tests.e2e.conftest import ReportSystem, report_request

pytestmark = pytest.mark.e2e


async def test_json_and_csv_report_complete(report_system: ReportSystem) -> None:
    await report_system.start()
    reqs = [report_request(i, prefix="smoke") for i in range(2)]
    await report_system.publish(reqs)
    assert report_system.watcher is not None
    done = await report_system.watcher.wait_terminal([r.request_id for r in reqs], 60)
    for r in reqs:
        assert len(done[r.request_id]) == 1
        ev = done[r.request_id][0]
        assert isinstance(ev, ReportCompleted), ev
        assert ev.total_rows == 300
    rows = report_system.watcher.rows_by_request()
    assert rows == {r.request_id: 300 for r in reqs}
