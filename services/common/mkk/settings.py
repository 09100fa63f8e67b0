"""Settings sections of the MKK report pipeline: where MKK is, the pipeline's secrets.

Hosts (§3.2, specs README): test (MKS Beta) and prod, each on the exchange line or
the internet line; `base_url` overrides both (the sandbox). Secrets are SecretStr and
come from the secrets directory (`mkk__password`, `pipeline__token_key` ...).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

HOSTS: dict[tuple[str, str], str] = {  # §3.2
    ("test", "exchange"): "https://apitest.mkk.com.tr",
    ("test", "internet"): "https://apitestint.mkk.com.tr",
    ("prod", "exchange"): "https://api.mkk.com.tr",
    ("prod", "internet"): "https://apiint.mkk.com.tr",
}


class MkkApiSettings(BaseModel):
    """How to reach MKS Online (REST)."""

    environment: Literal["test", "prod"] = "test"
    line: Literal["exchange", "internet"] = "exchange"
    base_url: str | None = None  # explicit override (the sandbox)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=20, ge=1)
    verify_tls: bool = True
    # §8: respect the service hours (Istanbul time) before calling.
    service_hours: bool = True

    def url(self) -> str:
        return (self.base_url or HOSTS[(self.environment, self.line)]).rstrip("/")


class MkkCredentials(BaseModel):
    """The online-integration user (auth-token only). FAQ 14: 6-10 chars, 365 days."""

    member: str = Field(default="TIB", pattern=r"^[A-Z0-9]{3,8}$")
    sender: str = Field(default="TIB991", pattern=r"^[A-Z0-9]{3,10}$")
    password: SecretStr | None = None
    # A file holding the password (a mounted Secret); re-read on every attempt so a
    # corrected password is picked up without a restart. Wins over `password`.
    password_file: Path | None = None
    # The day the password was set in MKS (YT25), to warn before its 365 days end.
    password_set_on: dt.date | None = None
    password_warning_days: int = Field(default=30, ge=1, le=365)


class PipelineSecrets(BaseModel):
    """Secrets shared by the report services (never on Kafka, never logged)."""

    # AES-GCM key for tokens on mks.auth.tokens (any text; SHA-256 gives the key).
    token_key: SecretStr = SecretStr("kopru-local-token-key")
    # HMAC key deriving each request's zipPassword (requester and fetcher).
    zip_key: SecretStr = SecretStr("kopru-local-zip-key")
