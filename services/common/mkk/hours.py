"""MKK service hours (§8), Istanbul time. Reports (group 1) and the asynchronous
status and content calls (group 4) run 01:00-23:00 every day; the token service 7/24."""

from __future__ import annotations

import datetime as dt

from schemas.mkk import ISTANBUL
from services.common.mkk.settings import MkkApiSettings
from services.common.observability.logging import get_logger

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


def log_service_hours(mkk: MkkApiSettings, service: str, now: dt.datetime | None = None) -> str:
    """Say at start whether §8 is enforced: with it on, a request outside 01:00-23:00
    Istanbul waits for the window (silently, at night, against a local stub)."""
    log = get_logger(__name__)
    if not mkk.service_hours:
        log.info("mkk service hours (§8) NOT enforced: calls go out at any hour",
                 service=service, setting="KOPRU_MKK__SERVICE_HOURS=false")  # fmt: skip
        return "off"
    wait = seconds_until_open(now)
    if wait > 0:
        log.warning(
            "mkk service hours (§8) enforced and MKK is closed now: report calls wait "
            "until 01:00 Istanbul time",
            service=service,
            opens_in_s=round(wait),
            hint="KOPRU_MKK__SERVICE_HOURS=false against a local sandbox or stub",
        )
        return "closed"
    log.info("mkk service hours (§8) enforced: report calls 01:00-23:00 Istanbul time",
             service=service, setting="KOPRU_MKK__SERVICE_HOURS=true")  # fmt: skip
    return "open"
