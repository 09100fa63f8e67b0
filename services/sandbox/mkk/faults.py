"""Injected faults, drawn from one RNG seeded by the config so a test run repeats."""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.sandbox.mkk.config import FaultConfig


@dataclass(frozen=True, slots=True)
class Draw:
    """What happens to one call."""

    http500: bool = False
    latency_s: float = 0.0
    drop: bool = False
    no_message_id: bool = False
    token_reject: bool = False


class Faults:
    def __init__(self, config: FaultConfig) -> None:
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def _hit(self, rate: float) -> bool:
        # Draw even when the rate is 0 or 1, so one fault's rate does not shift another's.
        return self._rng.random() < rate

    def draw(self, endpoint: str) -> Draw:
        c = self.config
        if endpoint not in c.endpoints:
            return Draw()
        http500 = self._hit(c.http500_rate)
        drop = self._hit(c.drop_rate)
        no_mid = self._hit(c.no_message_id_rate)
        reject = self._hit(c.token_reject_rate)
        jitter = self._rng.random() * c.latency_jitter_ms
        return Draw(
            http500=http500,
            latency_s=(c.latency_ms + jitter) / 1000.0,
            drop=drop,
            no_message_id=no_mid,
            token_reject=reject,
        )

    def report_fails(self) -> bool:
        return self._hit(self.config.report_error_rate)
