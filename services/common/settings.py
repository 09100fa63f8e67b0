"""Settings: shared sections composed into one model per service.

Every value comes from the environment with the prefix ``KOPRU_`` and ``__`` between
nested names (``KOPRU_KAFKA__BOOTSTRAP_SERVERS``), or from files in the secrets
directory (``KOPRU_SECRETS_DIR``, a mounted Kubernetes Secret) named the same way in
lower case without the prefix (``kafka__sasl_password``, ``mkk_auth__password``); the
full list per service is docs/settings.md, generated from the models (settings_reference.py)
and drift-checked with the contracts. Secrets are ``SecretStr``:
they print as ``**********`` and are read with ``get_secret_value()`` only where used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.common.observability.redaction import is_secret_key, redact

ENV_PREFIX = "KOPRU_"
NESTED = "__"


class KafkaSettings(BaseModel):
    """How to reach the Kafka cluster (or the local broker) and how to consume."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "kopru"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None  # CA bundle for SSL / SASL_SSL (None: system store)
    # Consumer group timing. Tests against the local broker set 2000 / 500: it holds
    # each JoinGroup for session_timeout/2 (ARCHITECTURE, local broker limits).
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    # Never 0: the local broker spins on it; real Kafka would too, at a cost.
    fetch_max_wait_ms: int = Field(default=500, ge=10)
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Delays of the retry tiers, in seconds: a retry waits on the smallest tier not
    # shorter than its delay, so one topic's messages are due in publish order.
    retry_tiers_s: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 60.0, 300.0])
    # Topic creation by `kopru broker` / `kopru topics create`: 3 and 2 on a 3-node
    # cluster (a write survives one lost broker); None leaves the broker's default.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # Each service ensures the topics it reads and writes (its retry tiers and DLQs from
    # its own retry_tiers_s) at start and after an unknown-topic error. Off where an
    # operator (Strimzi KafkaTopics) owns the topics and services may not create them.
    create_topics: bool = True
    # The largest record kopru writes (real Kafka refuses over message.max.bytes, 1 MB
    # by default): a bigger dead letter becomes a reference to the original.
    max_record_bytes: int = Field(default=1_000_000, ge=10_000)
    # Memory per fetch: per partition and per fetch response (a record bigger than
    # the per-partition limit still arrives alone: KIP-74).
    max_partition_fetch_bytes: int = Field(default=1_048_576, ge=1024)
    fetch_max_bytes: int = Field(default=16 * 1_048_576, ge=1024)
    # How soon a topic re-created after a broker restart is seen by the consumers.
    metadata_max_age_ms: int = Field(default=30_000, ge=1_000)
    # Idempotent producers (acks=all, no duplicates on retried produce requests).
    # Unset: detected at start (Apache Kafka yes, the embedded local broker no).
    # Whatever starts tansu sets it False (services/common/kafka/engines.py).
    idempotent_producer: bool | None = None
    # /readyz answers 503 when a partition has lag and made no progress this long.
    stall_after_s: float = Field(default=120.0, gt=0)

    @field_validator("retry_tiers_s")
    @classmethod
    def _tiers_ascending(cls, v: list[float]) -> list[float]:
        if not v or any(t <= 0 for t in v) or v != sorted(set(v)):
            raise ValueError("retry tiers must be positive, distinct and ascending")
        return v


class StoreSettings(BaseModel):
    """Idempotency and state stores. SQLite file embedded, PostgreSQL when shared."""

    url: str = "sqlite:///.kopru/kopru.db"
    pool_size: int = Field(default=10, ge=1, le=200)
    # How long an in-progress claim holds before another worker may take it over.
    claim_ttl_s: float = Field(default=60.0, gt=0)
    # How long completed entries are kept for replay.
    retention_days: int = Field(default=30, ge=1)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("store url must start with sqlite:/// or postgresql://")
        return v


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # auto: console renderer on a TTY, JSON otherwise.
    format: Literal["auto", "json", "console"] = "auto"


class HttpSettings(BaseModel):
    """The service's own HTTP port: health, readiness, metrics (and endpoints)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Processes serving this port (SO_REUSEPORT), each a whole replica of the service
    # (services/common/workers.py); more than one needs the PostgreSQL store.
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="processes serving the port (SO_REUSEPORT), each a whole replica; "
        "more than 1 needs the PostgreSQL store",
    )


class LifecycleSettings(BaseModel):
    """Deadlines of a service's start and stop."""

    # A broker (or database) that does not answer fails start-up after this long.
    startup_timeout_s: float = Field(default=60.0, gt=0)
    # Inside Kubernetes' terminationGracePeriodSeconds (30 s by default).
    shutdown_timeout_s: float = Field(default=20.0, gt=0)


class BaseServiceSettings(BaseSettings):
    """What every service shares. Each service subclasses this with its own sections."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        secrets_nested_delimiter=NESTED,
        secrets_prefix="",
        extra="ignore",
        validate_default=True,
    )

    service_name: str = "kopru"
    environment: Literal["local", "test", "prod"] = "local"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    # Istanbul time for MKK service hours and BKM timestamps.
    timezone: str = "Europe/Istanbul"

    @model_validator(mode="after")
    def _workers_share_postgres(self) -> BaseServiceSettings:
        if self.http.workers > 1 and self.store.url.startswith("sqlite"):
            raise ValueError(
                "KOPRU_HTTP__WORKERS > 1 needs the PostgreSQL store (KOPRU_STORE__URL="
                "postgresql://...): the workers are replicas and share it"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Secret files may hold nested values: `kafka__sasl_password`,
        # `mkk_auth__password`, `mkk_users__TIB992__password` (docs/settings.md).
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            NestedSecretsSettingsSource(file_secret_settings),
        )


S = TypeVar("S", bound=BaseSettings)


class SettingsError(SystemExit):
    """Invalid settings at start: the message names each variable and what is wrong.

    A ``SystemExit``: raised while reading settings it ends a command with the message and
    no traceback; ``kopru run`` also catches it from a service's build and start hooks
    (services/cli/serve.py) and exits non-zero, never leaving a half-started process.
    """

    @classmethod
    def invalid(cls, loc: tuple[int | str, ...], message: str) -> SettingsError:
        """One setting is wrong: ``SettingsError.invalid(("bkm", "private_key_file"), ...)``."""
        return cls(f"invalid settings:\n  {describe(loc)}: {message}")


def env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + NESTED.join(str(p).upper() for p in loc)


def describe(loc: tuple[int | str, ...]) -> str:
    """The variable for a settings location; a secret's file is named too."""
    if not loc:
        return "settings"
    name = env_name(loc)
    if is_secret_key(str(loc[-1])) or str(loc[-1]).endswith(("password", "passphrase")):
        secret_file = NESTED.join(str(p).lower() for p in loc)
        return f"{name} (or the file {secret_file} in {ENV_PREFIX}SECRETS_DIR)"
    return name


def validation_message(exc: ValidationError, *, settings: bool = True) -> str:
    """A ValidationError as one line per problem: the variable and what is wrong (never
    the value, which may be a secret). ``settings=False``: locations are model fields."""
    lines = [f"invalid settings ({exc.title}):" if settings else f"invalid {exc.title}:"]
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in err["loc"] if not isinstance(p, int) or not settings)
        msg = err["msg"].removeprefix("Value error, ")
        if not settings:
            where = ".".join(str(p) for p in err["loc"]) or exc.title
        elif loc and ENV_PREFIX not in msg:
            where = describe(loc)
        else:
            lines.append(f"  {msg}")
            continue
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def optional_section(value: Any) -> Any:
    """A section that is enabled by being given (a payment provider): ``enabled=false``
    in it means not given. Use as a ``mode="before"`` validator of the section field."""
    flag = value.get("enabled", True) if isinstance(value, dict) else True
    if str(flag).strip().lower() in ("false", "0", "no", "off"):
        return None
    return value


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from environment and secrets directory, or exit naming the variable."""
    secrets_dir = os.environ.get(f"{ENV_PREFIX}SECRETS_DIR")
    kwargs: dict[str, Any] = dict(overrides)
    if secrets_dir:
        if not Path(secrets_dir).is_dir():
            raise SettingsError(f"{ENV_PREFIX}SECRETS_DIR={secrets_dir} is not a directory")
        kwargs["_secrets_dir"] = secrets_dir
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        raise SettingsError(validation_message(exc)) from None


def masked(settings: BaseModel) -> dict[str, Any]:
    """The effective settings as plain data, secrets masked (for `kopru config show`):
    SecretStr fields by pydantic, passwords inside URLs (a store URL) by the redactor."""
    data: dict[str, Any] = redact(settings.model_dump(mode="json"))
    return data
