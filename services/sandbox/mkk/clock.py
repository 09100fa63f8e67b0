"""The sandbox clock: wall time plus an offset that tests and the admin API move forward."""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0

    @property
    def offset_s(self) -> float:
        return self._offset

    def time(self) -> float:
        """Seconds since the epoch, sandbox time."""
        return time.time() + self._offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), dt.UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds

    def set(self, when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("give the time with its zone")
        target = when.timestamp()
        if target < self.time():
            raise ValueError("the sandbox clock only moves forward")
        self._offset = target - time.time()

    def reset(self) -> None:
        self._offset = 0.0
