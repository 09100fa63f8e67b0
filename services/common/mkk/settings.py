"""Settings sections of the MKK report pipeline: where MKK is, the pipeline's secrets.

Hosts (§3.2, specs README): test (MKS Beta) and prod, each on the exchange line or
the internet line; `base_url` overrides both (the sandbox). Secrets are SecretStr and
come from the environment or from files in the secrets directory; every variable and
secret-file name is listed in docs/settings.md (generated from these models).

MKK users (§3.2: `sender` is the member's user code; FAQ 14: one password per user):
`mkk_users` holds any number of them keyed by user code, each with its own password
(`KOPRU_MKK_USERS__TIB992__MEMBER=TIB`, secret file `mkk_users__TIB992__password`);
`mkk_auth` is the shorthand for a single user (`KOPRU_MKK_AUTH__SENDER`, secret file
`mkk_auth__password`).
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
    service_hours: bool = Field(
        default=True,
        description="§8: report calls only 01:00-23:00 Istanbul; false for a local stub",
    )

    def url(self) -> str:
        return (self.base_url or HOSTS[(self.environment, self.line)]).rstrip("/")


class PasswordSource(BaseModel):
    """Where an MKK user's password comes from. FAQ 14: 6-10 chars, valid 365 days."""

    password: SecretStr | None = Field(
        default=None, description="this user's password (FAQ 14); this or password_file"
    )
    # A file holding the password (a mounted Secret); re-read on every attempt so a
    # corrected password is picked up without a restart. Wins over `password`.
    password_file: Path | None = Field(
        default=None, description="a file holding the password, re-read on every attempt"
    )
    # The day the password was set in MKS (YT25), to warn before its 365 days end.
    password_set_on: dt.date | None = None
    password_warning_days: int = Field(default=30, ge=1, le=365)

    def has_password_source(self) -> bool:
        return self.password is not None or self.password_file is not None


class MkkUserSettings(PasswordSource):
    """One user of `mkk_users` (auth-token only); its key is its user code (the
    `sender`, §3.2). `member` defaults to the member of `mkk_auth`."""

    member: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,8}$")


class MkkCredentials(PasswordSource):
    """One online-integration user with its codes: the `mkk_auth` shorthand, and each
    user of `mkk_users` once its key is known (auth-token only)."""

    member: str = Field(default="TIB", pattern=r"^[A-Z0-9]{3,8}$")
    sender: str = Field(default="TIB991", pattern=r"^[A-Z0-9]{3,10}$")

    @property
    def key(self) -> tuple[str, str]:
        return (self.member, self.sender)


def configured_users(
    users: dict[str, MkkUserSettings], single: MkkCredentials
) -> list[MkkCredentials]:
    """Every user auth-token serves: those of `mkk_users` (key = user code, any case),
    and the `mkk_auth` shorthand when no list is given or when it has a password."""
    out = [
        MkkCredentials(
            member=user.member or single.member,
            sender=code.upper(),
            **user.model_dump(exclude={"member"}),
        )
        for code, user in users.items()
    ]
    if not out or single.has_password_source():
        out.append(single)
    return out


def missing_password_problems(
    users: dict[str, MkkUserSettings], single: MkkCredentials
) -> list[str]:
    """What is missing for each configured user, naming the variables to set."""
    problems: list[str] = []
    for code, user in users.items():
        code = code.upper()
        problems += _password_problems(user, f"MKK_USERS__{code}", f"mkk_users__{code}")
    if not users or single.has_password_source():
        problems += _password_problems(single, "MKK_AUTH", "mkk_auth")
    return problems


def _password_problems(user: PasswordSource, env: str, secret: str) -> list[str]:
    if user.password_file is not None:
        if not user.password_file.is_file():
            return [f"KOPRU_{env}__PASSWORD_FILE={user.password_file}: no such file"]
        return []
    if user.password is None or not user.password.get_secret_value().strip():
        return [
            f"KOPRU_{env}__PASSWORD: no password for this MKK user; put it in the file "
            f"{secret}__password in KOPRU_SECRETS_DIR or set KOPRU_{env}__PASSWORD_FILE"
        ]
    return []


class PipelineSecrets(BaseModel):
    """Secrets shared by the report services (never on Kafka, never logged)."""

    # AES-GCM key for tokens on mks.auth.tokens (any text; SHA-256 gives the key).
    token_key: SecretStr = SecretStr("kopru-local-token-key")
    # HMAC key deriving each request's zipPassword (requester and fetcher).
    zip_key: SecretStr = SecretStr("kopru-local-zip-key")
