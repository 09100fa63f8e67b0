"""Sandbox configuration: members, users, certificates, durations, ledger and faults.

Read from a YAML or JSON file (`load_config`); every section has defaults, and with
no file at all the sandbox serves one demo member, TIB, with user TIB991.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from schemas.mkk import MEMBER_RE, SENDER_RE

# Message functions a user (and a member) needs for each call (§3.2.8, §5.1.8, §6.1.8, §6.2.8).
ALL_FUNCTIONS: tuple[str, ...] = (
    "ONLINE_AUTHENTICATE_USER",
    "RP013",
    "RP166",
    "COMMON_CREATE_REPORT",
    "ASYNC_REPORT_STATUS_QUERY",
    "ASYNC_REPORT_CONTENT_QUERY",
)

Endpoint = Literal["auth", "balance-report", "status", "content"]
ENDPOINTS: tuple[Endpoint, ...] = ("auth", "balance-report", "status", "content")

DEMO_MEMBER = "TIB"
DEMO_USER = "TIB991"
DEMO_PASSWORD = "Demo991!"  # sandbox only; 6-10 characters, digits, letters, a symbol
DEFAULT_STATE_DIR = Path(".kopru/sandbox/mkk")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserConfig(_Section):
    username: str = Field(pattern=SENDER_RE)
    password: SecretStr
    active: bool = True  # False: RP041 (§3.2.7)
    functions: list[str] = Field(default_factory=lambda: list(ALL_FUNCTIONS))


class MemberConfig(_Section):
    code: str = Field(pattern=MEMBER_RE)
    title: str = "Demo Yatırım Menkul Değerler A.Ş."  # certificate CN (§3.1)
    country: str = Field(default="TR", min_length=2, max_length=2)
    # PEM certificate registered at "MKK". None: the sandbox creates a key and a
    # self-signed certificate for the member on first run, in <state_dir>/members/<code>/.
    certificate: Path | None = None
    # A member without a certificate at all answers OI010 (§7); for tests.
    has_certificate: bool = True
    functions: list[str] = Field(default_factory=lambda: list(ALL_FUNCTIONS))  # MY04
    users: list[UserConfig] = Field(default_factory=list)


class Durations(_Section):
    """How long a report stays in each pending status (§6.1.7), in seconds of sandbox time."""

    rp020_s: float = Field(default=0.5, ge=0)
    rp021_s: float = Field(default=0.5, ge=0)
    rp022_s: float = Field(default=0.5, ge=0)
    rp023_s: float = Field(default=1.0, ge=0)
    token_lifetime_s: int = Field(default=3600, ge=1)  # §3.2: 60 minutes
    ref_id_ttl_s: float = Field(default=24 * 3600, gt=0)  # §5.1.5: refId lives 24 h

    def pending_total(self) -> float:
        return self.rp020_s + self.rp021_s + self.rp022_s + self.rp023_s


class LedgerConfig(_Section):
    """The synthetic ledger behind the balance reports (see ledger.py)."""

    seed: int = 20250505
    rows: int = Field(default=1000, ge=0, le=50_000_000)  # positions per member and date
    accounts: int = Field(default=500, ge=1)
    securities: int = Field(default=200, ge=1)
    files_per_report: int = Field(default=1, ge=1, le=100)
    csv_delimiter: Literal[",", ";", "|"] = ","


class FaultConfig(_Section):
    """Injected failures. Every rate is drawn from one RNG seeded with `seed`."""

    seed: int = 1
    # Which calls the faults touch: "auth", "balance-report", "status", "content".
    endpoints: list[Endpoint] = Field(default_factory=lambda: list(ENDPOINTS))
    http500_rate: float = Field(default=0.0, ge=0, le=1)  # HTTP 500, OI003, before MKS
    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    # The connection drops after MKS processed the call ("after") or before ("before").
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    drop_phase: Literal["before", "after"] = "after"
    # An answer without messageId (OI031, HTTP 500): the message never reached MKS (§5.1.5).
    no_message_id_rate: float = Field(default=0.0, ge=0, le=1)
    token_reject_rate: float = Field(default=0.0, ge=0, le=1)  # valid token refused (OI006)
    report_error_rate: float = Field(default=0.0, ge=0, le=1)  # report ends in RP025


class SandboxConfig(_Section):
    members: list[MemberConfig] = Field(default_factory=list)
    durations: Durations = Field(default_factory=Durations)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    state_dir: Path = DEFAULT_STATE_DIR
    service_hours: bool = False  # §8 windows, Istanbul time; off by default
    # RP003 (§5.1.7) while a report is in progress: of the same member, of anyone, or never.
    report_lock: Literal["member", "global", "off"] = "member"
    lockout_after: int = Field(default=3, ge=1)  # FAQ 15: three wrong passwords
    mkk_key_size: Literal[2048, 3072, 4096] = 2048
    member_key_size: Literal[2048, 3072, 4096] = 4096  # §3.1: 4096
    first_message_id: int = Field(default=875_569_523, ge=1)
    # How MKK signs its answers: §9.2 shows RS256; §3 allows "RSA SHA-256 or above".
    answer_alg: Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] = "RS256"

    @model_validator(mode="after")
    def _demo_member(self) -> SandboxConfig:
        if not self.members:
            self.members.append(demo_member())
        codes = [m.code for m in self.members]
        if len(codes) != len(set(codes)):
            raise ValueError("member codes must be unique")
        users = [u.username for m in self.members for u in m.users]
        if len(users) != len(set(users)):
            raise ValueError("user names must be unique")
        return self

    def member(self, code: str) -> MemberConfig | None:
        return next((m for m in self.members if m.code == code), None)


def demo_member() -> MemberConfig:
    return MemberConfig(
        code=DEMO_MEMBER,
        users=[UserConfig(username=DEMO_USER, password=SecretStr(DEMO_PASSWORD))],
    )


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid; the message says where."""


def load_config(path: Path | None = None, **overrides: Any) -> SandboxConfig:
    """Read a YAML or JSON config file (or none: the defaults) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read sandbox config {path}: {exc.strerror}") from None
        try:
            loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path} is not valid {path.suffix or 'YAML'}: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded or {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SandboxConfig.model_validate(data)
    except ValidationError as exc:
        where = path or "sandbox config"
        lines = [f"{where}: invalid sandbox config"]
        for err in exc.errors(include_input=False):
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
