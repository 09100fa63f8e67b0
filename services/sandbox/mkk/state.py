"""Everything the sandbox remembers: keys, tokens, references, lockouts, reports, the
log of received requests, faults and the clock. One instance per app, in memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

from services.sandbox.mkk import jws, keys
from services.sandbox.mkk.clock import Clock
from services.sandbox.mkk.config import FaultConfig, SandboxConfig
from services.sandbox.mkk.faults import Faults
from services.sandbox.mkk.hours import ISTANBUL
from services.sandbox.mkk.reports import ReportStore


@dataclass
class TokenInfo:
    member: str
    username: str
    exp: float


@dataclass
class RequestRecord:
    """One call as MKK saw it (admin API `GET /_sandbox/requests`)."""

    seq: int
    at: str  # sandbox time, UTC ISO 8601
    endpoint: str  # auth | balance-report | status | content
    member: str | None
    sender: str | None
    sender_reference: str | None
    http_status: int
    response_code: str | None
    message_id: str | None
    has_message_id: bool
    ref_id: str | None = None
    file_name: str | None = None
    fault: str | None = None  # http500 | dropped | no_message_id | token_reject | hours
    token_user: str | None = None  # the user whose token the call carried

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Paths:
    state_dir: Path
    mkk: keys.KeyPair
    members: dict[str, keys.KeyPair] = field(default_factory=dict)  # generated demo keys


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        state_dir = config.state_dir
        mkk_pair = keys.ensure_mkk_key(state_dir, config.mkk_key_size)
        self.paths = Paths(state_dir=state_dir, mkk=mkk_pair)
        self.mkk_key: RSAKey = jws.private_key(keys.load_private_key(mkk_pair.key_path))
        self.mkk_public: RSAKey = jws.public_key_of(keys.load_certificate(mkk_pair.cert_path))
        self.member_keys: dict[str, RSAKey | None] = {}
        for m in config.members:
            if not m.has_certificate:
                self.member_keys[m.code] = None
                continue
            cert_path = m.certificate
            if cert_path is None:
                pair = keys.ensure_member_key(
                    state_dir, m.code, m.title, m.country, config.member_key_size
                )
                self.paths.members[m.code] = pair
                cert_path = pair.cert_path
            self.member_keys[m.code] = jws.public_key_of(keys.load_certificate(cert_path))
        self.clock = Clock()
        self.faults = Faults(config.faults)
        self.reports = ReportStore(state_dir / "reports", config.ledger)
        self.service_hours = config.service_hours
        self.report_lock = config.report_lock
        self._init_memory()

    def _init_memory(self) -> None:
        self.tokens: dict[str, TokenInfo] = {}
        self.references: dict[str, set[str]] = {}
        self.failures: dict[str, int] = {}
        self.locked: set[str] = set()
        self.requests: list[RequestRecord] = []
        self.fail_next_reports = 0
        self._message_id = self.config.first_message_id

    # ------------------------------------------------------------ helpers

    def today(self) -> dt.date:
        """Today in Istanbul, sandbox time (§5.1.2 processDate)."""
        return self.clock.now().astimezone(ISTANBUL).date()

    def next_message_id(self) -> str:
        self._message_id += 1
        return str(self._message_id)

    def reference_used(self, member: str, reference: str) -> bool:
        return reference in self.references.get(member, set())

    def burn_reference(self, member: str, reference: str) -> None:
        self.references.setdefault(member, set()).add(reference)

    def record(self, **fields: Any) -> RequestRecord:
        rec = RequestRecord(seq=len(self.requests) + 1, at=self.clock.now().isoformat(), **fields)
        self.requests.append(rec)
        return rec

    def set_faults(self, config: FaultConfig) -> None:
        self.faults.configure(config)

    def reset(self) -> None:
        """Back to the state of a fresh start (keys and config kept)."""
        self.reports.reset()
        self.clock.reset()
        self.faults.configure(self.config.faults)
        self.service_hours = self.config.service_hours
        self.report_lock = self.config.report_lock
        self._init_memory()

    def close(self) -> None:
        self.reports.close()
