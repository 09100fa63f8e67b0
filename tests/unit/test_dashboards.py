"""The generated dashboards: valid Grafana JSON with one query per target, unique panel
ids, panels side by side that never overlap, and the panel list in docs matches."""

from __future__ import annotations

import json

from services.common.monitoring.dashboard_panels import DASHBOARDS
from services.common.monitoring.dashboards import dashboards


def _boards() -> dict[str, dict[str, object]]:
    return {path: json.loads(text) for path, text in dashboards().items() if path.endswith(".json")}


def test_one_dashboard_per_flow() -> None:
    uids = {b["uid"] for b in _boards().values()}
    assert uids == {"kopru-reports", "kopru-payments", "kopru-platform"}


def test_panels_have_unique_ids_queries_and_no_overlap() -> None:
    for path, board in _boards().items():
        panels = board["panels"]
        assert isinstance(panels, list)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), path
        cells: set[tuple[int, int]] = set()
        for p in panels:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, (path, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (path, p["title"])
                    cells.add((x, y))
            if p["type"] == "row":
                continue
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["expr"] and t["datasource"]["uid"] == "${datasource}"
        variables = board["templating"]["list"]  # type: ignore[index]
        assert [v["name"] for v in variables] == ["datasource"]


def test_the_panel_list_in_docs_names_every_panel_and_query() -> None:
    doc = dashboards()["docs/dashboards.md"]
    for d in DASHBOARDS:
        assert f"`{d.uid}`" in doc
        for row in d.rows:
            for panel in row.panels:
                assert f"**{panel.title}**" in doc
                for q in panel.queries:
                    assert q.expr in doc


def test_the_issue_s_panels_are_there() -> None:
    titles = " | ".join(p.title.lower() for d in DASHBOARDS for row in d.rows for p in row.panels)
    for words in ("requests by state", "mkk calls by endpoint", "latency", "polls per report",
                  "rows published", "time to completion", "token life", "blocked",
                  "certificate days", "confirmations by result", "ts skew", "outbox backlog",
                  "reconciliation", "moka", "messages in per topic", "messages out per topic",
                  "lag per group", "dead-letter topic depth", "dead letters per minute",
                  "retry tier", "delayed", "/readyz"):  # fmt: skip
        assert words in titles, words
