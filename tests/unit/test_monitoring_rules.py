"""Alert rules: promtool accepts them and their unit tests pass; every alert has a firing
and a quiet test case and a runbook section; every dashboard query is valid PromQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.common.monitoring.dashboard_panels import expressions
from services.common.monitoring.rules import RULES, TESTS, alerts
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool (Debian package prometheus; `make monitoring-tools`)")
    assert path is not None
    return path


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    check = subprocess.run(
        [promtool(), "check", "rules", RULES], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in check.stdout
    test = subprocess.run(
        [promtool(), "test", "rules", TESTS], cwd=ROOT, capture_output=True, text=True
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load((ROOT / TESTS).read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for t in case.get("alert_rule_test", []):
            (firing if t["exp_alerts"] else quiet).add(t["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_links_its_runbook_section() -> None:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {h.strip().lower() for h in re.findall(r"^## (.+)$", text, re.M)}
    for a in alerts():
        url = a["annotations"]["runbook_url"]
        assert url == f"docs/runbooks.md#{a['alert'].lower()}", a["alert"]
        assert a["alert"].lower() in anchors, f"no runbook section for {a['alert']}"
        assert a["labels"]["severity"] in ("warning", "critical")


def test_the_issue_s_alerts_exist() -> None:
    names = {a["alert"] for a in alerts()}
    assert {
        "KopruDeadLetters",
        "KopruMkkErrorsRising",
        "KopruReportOverdue",
        "KopruMkkTokenRenewalFailing",
        "KopruPaymentsOutboxBacklog",
        "KopruBkmTsSkew",
        "KopruPaymentNotifier5xx",
    } <= names


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"kopru:dashboard_query_{i}", "expr": e}
                    for i, e in enumerate(expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (topic) (rate(kopru_messages_total{topic="a.b",outcome="done"}[5m]))',
         {"kopru_messages_total"}),
        ("histogram_quantile(0.95, sum by (e, le) (rate(kopru_mkk_call_seconds_bucket[5m])))",
         {"kopru_mkk_call_seconds_bucket"}),
        ("x unless x offset 10m and on (instance) ((up offset 10m) or (p > time() - 600))",
         {"x", "up", "p"}),
        ('deriv(sum by (s) (lag)[15m:1m]) > 0 and min by (kopru_service) (kopru_ready) == 0',
         {"lag", "kopru_ready"}),
    ],
)  # fmt: skip
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    from services.common.monitoring.promql_names import metric_names

    assert metric_names(expr) == names
