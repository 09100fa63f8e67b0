"""MKK service hours (§8), Istanbul time. Off unless the config turns them on.

Group 1 (no balance change: balance-report, content) and group 4 (asynchronous
returns: status) run 01:00-23:00 every day; the token service runs 7/24 (§3.2.9).
Group 2 (balance-changing, business days) is listed for completeness; no report call
belongs to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

ISTANBUL = ZoneInfo("Europe/Istanbul")


@dataclass(frozen=True, slots=True)
class Window:
    start: dt.time
    end: dt.time
    business_days_only: bool = False

    def contains(self, local: dt.datetime) -> bool:
        if self.business_days_only and local.weekday() >= 5:
            return False
        return self.start <= local.time() < self.end


ALWAYS = Window(dt.time(0, 0), dt.time.max)
GROUP_1 = Window(dt.time(1, 0), dt.time(23, 0))
GROUP_2 = Window(dt.time(8, 30), dt.time(21, 0), business_days_only=True)
GROUP_3 = Window(dt.time(1, 0), dt.time(23, 0))
GROUP_4 = Window(dt.time(1, 0), dt.time(23, 0))

# Endpoint → window (§3.2.9, §5.1.9, §6.1.9, §6.2.9).
WINDOWS: dict[str, Window] = {
    "auth": ALWAYS,
    "balance-report": GROUP_1,
    "status": GROUP_4,
    "content": GROUP_1,
}


def is_open(endpoint: str, now_utc: dt.datetime) -> bool:
    window = WINDOWS.get(endpoint, ALWAYS)
    return window.contains(now_utc.astimezone(ISTANBUL))
