"""The table of figures and the last line; the exit code follows from the figures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    reports_done: int
    reports: int
    confirmations_done: int
    confirmations: int
    lost: int
    duplicate_submissions: int
    duplicate_events: int
    stuck_partitions: int
    secrets: int
    replay_mismatches: int = 0
    bad_records_not_dead_lettered: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.reports_done == self.reports
            and self.confirmations_done == self.confirmations
            and self.lost == 0
            and self.duplicate_submissions == 0
            and self.duplicate_events == 0
            and self.stuck_partitions == 0
            and self.secrets == 0
            and self.replay_mismatches == 0
            and self.bad_records_not_dead_lettered == 0
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def last_line(self) -> str:
        return (
            f"chaos: reports {self.reports_done}/{self.reports}, "
            f"confirmations {self.confirmations_done}/{self.confirmations}, "
            f"lost {self.lost}, duplicate submissions {self.duplicate_submissions}, "
            f"duplicate events {self.duplicate_events}, "
            f"stuck partitions {self.stuck_partitions}, secrets {self.secrets}"
        )


def table(rows: list[tuple[str, str, object]]) -> str:
    """(section, figure, value) rows as one aligned table; a section named once."""
    w1 = max([len("section"), *(len(s) for s, _, _ in rows)])
    w2 = max([len("figure"), *(len(f) for _, f, _ in rows)])
    out = [f"{'section':<{w1}}  {'figure':<{w2}}  value", f"{'-' * w1}  {'-' * w2}  -----"]
    last = None
    for section, figure, value in rows:
        shown = section if section != last else ""
        last = section
        out.append(f"{shown:<{w1}}  {figure:<{w2}}  {value}")
    return "\n".join(out)
