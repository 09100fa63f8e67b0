"""The system under chaos: a 3-node Apache Kafka cluster, the MKK and BKM sandboxes, two
replicas of every consumer service on PostgreSQL, each a real process with its own log.

Everything started here dies with this process (PR_SET_PDEATHSIG) and is stopped by
`System.close()` (SIGTERM, then SIGKILL), also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from services.common.kafka.kafka_cluster import KafkaCluster, prepare, wait_for_leaders
from services.common.kafka.local_broker import die_with_parent, free_port
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings
from services.demo.flow_payments import (
    DEMO_POS_PASSWORD,
    MOKA_DEMO_PASSWORD,
    bkm_sandbox_argv,
    cli,
    moka_sandbox_argv,
    notifier_env,
    write_secrets,
)
from services.sandbox.bkm.keys import BkmDemoKeys
from services.sandbox.bkm.keys import ensure_demo_keys as ensure_bkm_keys
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import DemoKeys
from services.sandbox.mkk.keys import ensure_demo_keys as ensure_mkk_keys

ROOT = Path(__file__).resolve().parents[1]
REPORT_SERVICES = ("auth-token", "report-requester", "status-poller", "content-fetcher")
SERVICES = (*REPORT_SERVICES, "payment-notifier")
REPLICAS = ("a", "b")
PG_DSN = os.environ.get("KOPRU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BIG_RECORD_BYTES = 16 * 1024 * 1024  # the chaos cluster takes the 10 MB record
BROKER_CONFIG = {
    "message.max.bytes": str(BIG_RECORD_BYTES),
    "replica.fetch.max.bytes": str(BIG_RECORD_BYTES),
}
SANDBOX_CONFIG = """
durations: {rp020_s: 0.2, rp021_s: 0.2, rp022_s: 0.2, rp023_s: 0.3}
ledger: {rows: 300, accounts: 50, securities: 20}
report_lock: "off"
faults: {seed: 7}
"""


def kafka_settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=100,
        retry_tiers_s=[0.5, 1.0, 2.0, 5.0],
        replication_factor=3,
        min_insync_replicas=2,
        idempotent_producer=True,
    )


def kafka_env(settings: KafkaSettings) -> dict[str, str]:
    return {
        "KOPRU_KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "KOPRU_KAFKA__SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
        "KOPRU_KAFKA__FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms),
        "KOPRU_KAFKA__RETRY_TIERS_S": "[0.5, 1.0, 2.0, 5.0]",
        "KOPRU_KAFKA__REPLICATION_FACTOR": "3",
        "KOPRU_KAFKA__MIN_INSYNC_REPLICAS": "2",
        "KOPRU_KAFKA__IDEMPOTENT_PRODUCER": "true",
        "KOPRU_KAFKA__STALL_AFTER_S": "60",
        "KOPRU_LOG__FORMAT": "json",
        "KOPRU_LOG__LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    _out: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
        self._close()

    def stop(self, grace_s: float = 15.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._close()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    async def wait_ready(self, client: httpx.AsyncClient, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.ready_url:
            if self.popen is None or self.popen.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited; its log ends:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(self.ready_url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready at {self.ready_url}")
            await asyncio.sleep(0.3)


@dataclass
class Secrets:
    """What must never show up in a log line or a record."""

    mkk_password: str
    token_key: str
    zip_key: str
    pos_password: str
    moka_password: str
    private_keys: list[Path]


@dataclass
class System:
    root: Path
    db: str
    cluster: KafkaCluster | None = None
    kafka: KafkaSettings | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    mkk_url: str = ""
    bkm_url: str = ""
    notifier_urls: list[str] = field(default_factory=list)
    mkk_keys: DemoKeys | None = None
    bkm_keys: BkmDemoKeys | None = None
    secrets: Secrets | None = None

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def bootstrap(self) -> str:
        assert self.kafka is not None
        return self.kafka.bootstrap_servers

    def store_url(self, which: str) -> str:
        return PG_DSN.rsplit("/", 1)[0] + f"/{self.db}_{which}"

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for which in ("reports", "payments"):
            await database(f"{self.db}_{which}", create=True)
        dist = await prepare()
        self.cluster = KafkaCluster(
            3, data_dir=self.root / "kafka", dist=dist, broker_config=BROKER_CONFIG
        )
        self.cluster.start()
        await self.cluster.wait_ready()
        self.kafka = kafka_settings(self.cluster.bootstrap_servers)
        await create_topics(self.kafka)
        await wait_for_leaders(self.bootstrap, [t.name for t in plan(self.kafka)])
        self._specs()
        for proc in self.procs.values():
            proc.start()
        async with httpx.AsyncClient(timeout=2.0) as client:
            for proc in self.procs.values():
                await proc.wait_ready(client)

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.running and proc.popen is not None:
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(list(self.procs.values())):
            proc.stop(max(0.1, deadline - time.monotonic()))
        if self.cluster is not None:
            self.cluster.stop_all(10.0)
            self.cluster.kill_all()

    async def drop_databases(self) -> None:
        for which in ("reports", "payments"):
            with contextlib.suppress(Exception):
                await database(f"{self.db}_{which}", create=False)

    def replicas(self, service: str) -> list[Proc]:
        return [self.procs[f"{service}-{r}"] for r in REPLICAS]

    def alive(self) -> tuple[int, list[str]]:
        """(processes running, names of those that are not)."""
        dead = [p.name for p in self.procs.values() if not p.running]
        return len(self.procs) - len(dead), dead

    def service_logs(self) -> list[Path]:
        return [self.procs[f"{s}-{r}"].log for s in SERVICES for r in REPLICAS]

    # -- what to run -----------------------------------------------------------------

    def _specs(self) -> None:
        assert self.kafka is not None
        base = kafka_env(self.kafka)
        sandbox_dir = self.root / "mkk"
        self.mkk_keys = ensure_mkk_keys(sandbox_dir)
        cfg = self.root / "mkk.yaml"
        cfg.write_text(SANDBOX_CONFIG)
        port = free_port()
        self.mkk_url = f"http://127.0.0.1:{port}"
        argv = cli("sandbox", "mkk", "--port", str(port), "--state-dir", str(sandbox_dir))
        self._add("sandbox-mkk", [*argv, "--config", str(cfg)], {}, self.mkk_url + "/_sandbox/info")

        secrets_dir = self.root / "secrets-reports"
        secrets_dir.mkdir(parents=True, exist_ok=True)
        token_key, zip_key = (
            f"chaos-tk-{secrets.token_hex(12)}",
            f"chaos-zk-{secrets.token_hex(12)}",
        )
        (secrets_dir / "pipeline__token_key").write_text(token_key)
        (secrets_dir / "pipeline__zip_key").write_text(zip_key)
        password = secrets_dir / "mkk_password"
        password.write_text(DEMO_PASSWORD)  # the sandbox's demo user
        for f in secrets_dir.iterdir():
            f.chmod(0o600)
        reports = {
            **base,
            "KOPRU_SECRETS_DIR": str(secrets_dir),
            "KOPRU_STORE__URL": self.store_url("reports"),
            "KOPRU_MKK__BASE_URL": self.mkk_url,
            "KOPRU_MKK__SERVICE_HOURS": "false",
            "KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE": str(self.mkk_keys.member_key),
            "KOPRU_MKK_SIGNING__MKK_CERTIFICATE_FILE": str(self.mkk_keys.mkk_certificate),
            "KOPRU_MKK_SIGNING__POOL_WORKERS": "1",
            "KOPRU_MKK_AUTH__PASSWORD_FILE": str(password),
            "KOPRU_TOKEN__WAIT_S": "5.0",
            "KOPRU_TOKEN__UNAVAILABLE_RETRY_S": "1.0",
            "KOPRU_AUTH__CHECK_EVERY_S": "0.5",
            "KOPRU_AUTH__RETRY_S": "0.5",
            "KOPRU_REQUESTER__BACKOFF_BASE_S": "0.5",
            "KOPRU_REQUESTER__BACKOFF_CAP_S": "2.0",
            "KOPRU_POLLER__BACKOFF_BASE_S": "0.3",
            "KOPRU_POLLER__BACKOFF_CAP_S": "1.5",
            "KOPRU_FETCHER__BATCH_SIZE": "100",
        }
        for service in REPORT_SERVICES:
            for r in REPLICAS:
                p = free_port()
                env = {**reports, "KOPRU_HTTP__PORT": str(p)}
                if service == "content-fetcher":
                    env["KOPRU_FETCHER__TMP_DIR"] = str(self.root / f"fetch-{r}")
                self._add(
                    f"{service}-{r}", cli("run", service), env, f"http://127.0.0.1:{p}/readyz"
                )

        bkm_dir = self.root / "bkm"
        self.bkm_keys = ensure_bkm_keys(bkm_dir)
        bkm_port, ports = free_port(), [free_port() for _ in REPLICAS]
        self.bkm_url = f"http://127.0.0.1:{bkm_port}"
        self.notifier_urls = [f"http://127.0.0.1:{p}" for p in ports]
        argv = bkm_sandbox_argv(
            bkm_port, bkm_dir, [u + "/bkm/confirmation" for u in self.notifier_urls], None
        )
        self._add("sandbox-bkm", argv, {}, self.bkm_url + "/healthz")
        moka_port = free_port()
        moka_url = f"http://127.0.0.1:{moka_port}"
        self._add("sandbox-moka", moka_sandbox_argv(moka_port), {}, moka_url + "/healthz")
        pay_secrets = write_secrets(self.root / "secrets-payments")
        for r, p in zip(REPLICAS, ports, strict=True):
            env = notifier_env(
                http_port=p,
                keys=self.bkm_keys,
                bkm_url=self.bkm_url,
                moka_url=moka_url,
                store_url=self.store_url("payments"),
                secrets_dir=pay_secrets,
            )
            env |= {
                **base,
                "KOPRU_PAYMENTS__PUBLISH_LEASE_S": "2",
                "KOPRU_BKM__TS_TOLERANCE_S": "1800",
            }
            self._add(
                f"payment-notifier-{r}",
                cli("run", "payment-notifier"),
                env,
                f"http://127.0.0.1:{p}/readyz",
            )
        self.secrets = Secrets(
            mkk_password=DEMO_PASSWORD,
            token_key=token_key,
            zip_key=zip_key,
            pos_password=DEMO_POS_PASSWORD,
            moka_password=MOKA_DEMO_PASSWORD,
            private_keys=[
                self.mkk_keys.member_key,
                self.bkm_keys.merchant_private,
                self.bkm_keys.bkm_private,
            ],
        )

    def _add(self, name: str, argv: list[str], env: dict[str, str], ready: str | None) -> None:
        self.procs[name] = Proc(name, argv, env, ready, self.logs / f"{name}.log")


async def database(name: str, create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        if create:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
