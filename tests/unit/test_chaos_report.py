"""The chaos run's last line (its exact form) and its exit code."""

from __future__ import annotations

import re

import pytest

from chaos.report import Verdict, table

LINE = re.compile(
    r"^chaos: reports \d+/\d+, confirmations \d+/\d+, lost \d+, duplicate submissions \d+, "
    r"duplicate events \d+, stuck partitions \d+, secrets \d+$"
)


def clean(**over: int) -> Verdict:
    base = dict(
        reports_done=200, reports=200, confirmations_done=1000, confirmations=1000, lost=0,
        duplicate_submissions=0, duplicate_events=0, stuck_partitions=0, secrets=0,
    )  # fmt: skip
    return Verdict(**(base | over))


def test_a_clean_run_exits_zero_with_the_exact_line() -> None:
    v = clean()
    assert v.last_line() == (
        "chaos: reports 200/200, confirmations 1000/1000, lost 0, duplicate submissions 0, "
        "duplicate events 0, stuck partitions 0, secrets 0"
    )
    assert LINE.match(v.last_line())
    assert v.exit_code == 0


@pytest.mark.parametrize(
    "over",
    [
        {"reports_done": 199},
        {"confirmations_done": 999},
        {"lost": 1},
        {"duplicate_submissions": 1},
        {"duplicate_events": 2},
        {"stuck_partitions": 1},
        {"secrets": 3},
        {"replay_mismatches": 1},
        {"bad_records_not_dead_lettered": 1},
    ],
)
def test_anything_lost_duplicated_stuck_or_leaked_fails(over: dict[str, int]) -> None:
    v = clean(**over)
    assert v.exit_code == 1
    assert LINE.match(v.last_line())


def test_the_numbers_are_the_measured_ones() -> None:
    v = clean(reports_done=198, lost=2, secrets=4)
    assert "reports 198/200" in v.last_line()
    assert "lost 2" in v.last_line() and v.last_line().endswith("secrets 4")


def test_table_names_each_section_once() -> None:
    out = table([("reports", "requested", 200), ("reports", "lost", 0), ("mkk", "calls", 3)])
    lines = out.splitlines()
    assert lines[0].startswith("section") and len(lines) == 5
    assert lines[2].startswith("reports") and lines[3].startswith(" ")
    assert lines[4].startswith("mkk")
