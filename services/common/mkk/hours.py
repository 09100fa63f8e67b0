"""MKK service hours (§8), Istanbul time. Reports (group 1) and the asynchronous
status and content calls (group 4) run 01:00-23:00 every day; the token service 7/24."""

from __future__ import annotations

import datetime as dt

from schemas.mkk import ISTANBUL

OPEN = dt.time(1, 0)
CLOSE = dt.time(23, 0)


def seconds_until_open(now: dt.datetime | None = None) -> float:
    """0 inside the window; otherwise the seconds until 01:00 Istanbul."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(ISTANBUL)
    if OPEN <= local.time() < CLOSE:
        return 0.0
    day = local.date() if local.time() < OPEN else local.date() + dt.timedelta(days=1)
    opens = dt.datetime.combine(day, OPEN, tzinfo=ISTANBUL)
    return max(1.0, (opens - local).total_seconds())
