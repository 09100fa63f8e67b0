"""Shared fixtures: the real local broker, real SQLite and PostgreSQL stores.

Under CI=true a test that would be skipped because the broker or PostgreSQL is
missing fails instead: CI must never go green by skipping the real parts.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.kafka.local_broker import LocalBroker
from services.common.observability.logging import configure_logging
from services.common.settings import KafkaSettings, LogSettings, StoreSettings
from services.common.stores.factory import open_store
from services.common.stores.idempotency import IdempotencyStore

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Services built in-process log through kopru's own chain (redaction, plain tracebacks),
# never structlog's default one, which renders every frame's locals.
configure_logging(LogSettings(level="INFO", format="console"))
PG_DSN = os.environ.get("KOPRU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def local_kafka_settings(bootstrap: str, **over: object) -> KafkaSettings:
    """Consumer timings the local broker needs (it holds JoinGroup for session/2)."""
    base: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "session_timeout_ms": 2000,
        "heartbeat_interval_ms": 500,
        "fetch_max_wait_ms": 100,
        "retry_tiers_s": [0.5, 1.0, 2.0, 5.0],
    }
    base.update(over)
    return KafkaSettings.model_validate(base)


async def _start_broker() -> LocalBroker:
    broker = LocalBroker()
    try:
        broker.start()
        await broker.wait_ready()
    except (FileNotFoundError, OSError, TimeoutError, RuntimeError) as exc:
        broker.stop()
        unavailable(f"local Kafka broker could not start: {exc}")
    return broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[LocalBroker]:
    """One broker for the session (tests use their own fresh topic names)."""
    broker = asyncio.run(_start_broker())
    yield broker
    broker.stop()


@pytest.fixture
async def fresh_broker() -> AsyncIterator[LocalBroker]:
    """A broker of its own for one test (~20 ms to start): empty topics, no groups."""
    broker = await _start_broker()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_settings(fresh_broker: LocalBroker) -> KafkaSettings:
    return local_kafka_settings(fresh_broker.bootstrap_servers)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this session on the local PostgreSQL, dropped after."""
    import asyncpg

    name = f"kopru_test_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except Exception as exc:
        unavailable(f"PostgreSQL at {PG_DSN} is not reachable: {exc}")
    yield PG_DSN.rsplit("/", 1)[0] + "/" + name
    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """The same tests run against both stores."""
    if request.param == "sqlite":
        return StoreSettings(url=f"sqlite:///{tmp_path}/kopru.db")
    url = request.getfixturevalue("postgres_url")
    return StoreSettings(url=url)


@pytest.fixture
async def store(store_settings: StoreSettings) -> AsyncIterator[IdempotencyStore]:
    s = open_store(store_settings)
    await s.open()
    if store_settings.url.startswith("postgres"):
        await s.db.pool.execute("TRUNCATE kopru_idempotency")  # type: ignore[attr-defined]
    yield s
    await s.close()
