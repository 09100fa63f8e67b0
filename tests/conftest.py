"""Shared fixtures: a real broker (Apache Kafka or tansu), real SQLite and PostgreSQL.

The broker engine is `KOPRU_TEST_ENGINE` (`kafka`, the default: a single-node Apache
Kafka KRaft; or `tansu`). A test marked `@pytest.mark.engines("tansu", "kafka")` runs
once on each. Every test using `fresh_broker` / `kafka_settings` gets an empty broker of
its own (tests/broker_pool.py). Under CI=true a test that would be skipped because Java,
Maven, the broker or PostgreSQL is missing fails instead: CI must never go green by
skipping the real parts.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.kafka.engines import engine as engine_info
from services.common.kafka.kafka_dist import KafkaDist, KafkaUnavailable
from services.common.observability.logging import configure_logging
from services.common.settings import KafkaSettings, LogSettings, StoreSettings
from services.common.stores.factory import open_store
from services.common.stores.idempotency import IdempotencyStore
from tests.broker_pool import POOL, TEST_ENGINE, Broker, start_broker, stop_broker, summary

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


def local_kafka_settings(
    bootstrap: str, engine: str = TEST_ENGINE, **over: object
) -> KafkaSettings:
    """Consumer timings for local brokers, fitted to what the engine supports.

    tansu holds each JoinGroup for session/2: 2 s sessions. Apache Kafka enforces
    sessions strictly: 2 s expired under a CI machine's load (spurious rebalances,
    test_one_auth_per_token_life_under_load[kafka] failed at load 40), so 6 s there."""
    kafka = engine == "kafka"
    base: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "session_timeout_ms": 6000 if kafka else 2000,
        "heartbeat_interval_ms": 1000 if kafka else 500,
        "fetch_max_wait_ms": 100,
        "retry_tiers_s": [0.5, 1.0, 2.0, 5.0],
        "idempotent_producer": engine_info(engine).idempotent_producer,
    }
    base.update(over)
    return KafkaSettings.model_validate(base)


def broker_settings(broker: Broker, **over: object) -> KafkaSettings:
    return local_kafka_settings(broker.bootstrap_servers, broker.engine, **over)


def engine_env(broker: Broker) -> dict[str, str]:
    """What a service process needs in its environment for this broker."""
    s = broker_settings(broker)
    return {
        "KOPRU_KAFKA__BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "KOPRU_KAFKA__SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
        "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": str(s.heartbeat_interval_ms),
        "KOPRU_KAFKA__IDEMPOTENT_PRODUCER": str(s.idempotent_producer).lower(),
    }


async def _start_broker(engine: str) -> Broker:
    try:
        return await start_broker(engine)
    except (FileNotFoundError, OSError, TimeoutError, RuntimeError, KafkaUnavailable) as exc:
        unavailable(f"{engine} broker could not start: {exc}")
        raise  # unreachable: unavailable() skips or fails


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engines(*names): run the test once per broker engine (tansu, kafka)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`broker_engine` is KOPRU_TEST_ENGINE, or each engine of @pytest.mark.engines."""
    if "broker_engine" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("engines")
        engines = list(marker.args) if marker else [TEST_ENGINE]
        metafunc.parametrize("broker_engine", engines, scope="function")


_OUTCOMES: Counter[tuple[str, str]] = Counter()
_ENGINE_OF: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Which engine each broker test runs on, for the summary."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        names = getattr(item, "fixturenames", ())
        if callspec is not None and "broker_engine" in callspec.params:
            _ENGINE_OF[item.nodeid] = callspec.params["broker_engine"]
        elif "kafka_broker" in names:
            _ENGINE_OF[item.nodeid] = TEST_ENGINE
        elif "kafka_dist" in names:  # starts Apache Kafka clusters of its own
            _ENGINE_OF[item.nodeid] = "kafka"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    engine = _ENGINE_OF.get(report.nodeid)
    if engine is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _OUTCOMES[(engine, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = summary(_OUTCOMES)
    if lines:
        terminalreporter.section("broker engines")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish() -> None:
    POOL.close()


@pytest.fixture(scope="session")
def kafka_dist() -> KafkaDist:
    """Apache Kafka fetched and prepared once (jars, storage templates, CDS archive), for
    tests that start clusters of their own; skips locally without Java or Maven."""
    try:
        return asyncio.run(POOL.ready_dist())
    except (KafkaUnavailable, OSError, RuntimeError, TimeoutError) as exc:
        unavailable(f"Apache Kafka could not be prepared: {exc}")
        raise  # unreachable: unavailable() skips or fails


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """One broker for the session on KOPRU_TEST_ENGINE (tests use fresh topic names)."""
    broker = asyncio.run(_start_broker(TEST_ENGINE))
    yield broker
    stop_broker(broker)


@pytest.fixture
async def fresh_broker(broker_engine: str) -> AsyncIterator[Broker]:
    """An empty broker of its own for one test: no topics, no groups."""
    broker = await _start_broker(broker_engine)
    yield broker
    stop_broker(broker)


@pytest.fixture
def kafka_settings(fresh_broker: Broker) -> KafkaSettings:
    return broker_settings(fresh_broker)


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
