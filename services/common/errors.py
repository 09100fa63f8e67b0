"""What a handler raises to say what should happen to the message it was given.

- return normally: done, the offset is committed;
- `RetryLater`: a transient condition (MKK busy, RP003, 5xx, timeout, outside service
  hours); the message is re-delivered after `delay_s` through the retry tiers;
- `InvalidMessage` (or pydantic's ValidationError): bad input, straight to the DLQ;
- any other exception: a bug; straight to the DLQ with the error, the service goes on.
"""

from __future__ import annotations


class RetryLater(Exception):
    """Try the same message again after `delay_s` seconds (None: the tier policy decides)."""

    def __init__(self, reason: str, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


class InvalidMessage(Exception):
    """The message can never be processed as it is: send it to the dead-letter topic."""


class Shutdown(Exception):
    """Raised inside a handler when the service stops; the message is not committed."""
