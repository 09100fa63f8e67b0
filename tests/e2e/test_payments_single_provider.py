"""payment-notifier with one provider: started with only BKM settings, and with only Moka
settings, each serves its own flow end to end (real processes, the real local broker,
SQLite), driven by `kopru payment ...` as an operator or upstream would.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from schemas.events import BKM_INITIALIZED
from services.common.kafka.local_broker import LocalBroker, free_port
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings
from services.demo.flow_payments import (
    DEMO_APPLICATION,
    DEMO_POS_PASSWORD,
    MERCHANT_ID,
    MOKA_DEALER,
    MOKA_DEMO_PASSWORD,
    MOKA_USER,
    bkm_sandbox_argv,
    cli,
    moka_sandbox_argv,
    wait_for,
)
from services.sandbox.bkm.app import SERVICE_PATH
from services.sandbox.bkm.keys import ensure_demo_keys
from tests.conftest import unavailable
from tests.e2e.test_payments_e2e import LOCAL_KAFKA, Proc, start, stop, wait_ready

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def broker() -> AsyncIterator[str]:
    local = LocalBroker()
    try:
        local.start()
        await local.wait_ready()
    except (OSError, RuntimeError, TimeoutError) as exc:
        local.stop()
        unavailable(f"local broker: {exc}")
    try:
        kafka = KafkaSettings(bootstrap_servers=local.bootstrap_servers)
        await create_topics(kafka, plan(kafka), with_config=False)
        yield local.bootstrap_servers
    finally:
        local.stop()


def secrets(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True)
    for name, value in files.items():
        (directory / name).write_text(value)
        (directory / name).chmod(0o600)
    return directory


async def kopru(bootstrap: str, *args: str) -> tuple[int, str]:
    """`kopru ARGS` as an operator types it; (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        *cli(*args),
        cwd=ROOT,
        env={**os.environ, **LOCAL_KAFKA, "KOPRU_KAFKA__BOOTSTRAP_SERVERS": bootstrap},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    return proc.returncode or 0, out.decode()


def only(procs: list[Proc], notifier: Proc, absent: str) -> None:
    log = notifier.log.read_text()
    assert absent not in log, log[-2000:]
    assert "Traceback" not in log


async def test_bkm_only_notifier_serves_a_payment(broker: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    keys = ensure_demo_keys(tmp_path / "bkm")
    port, bkm_port = free_port(), free_port()
    notifier_url, bkm_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bkm_port}"
    env = {  # BKM and its POS data; not one KOPRU_MOKA__* value, no Moka secret
        "KOPRU_KAFKA__BOOTSTRAP_SERVERS": broker,
        "KOPRU_HTTP__PORT": str(port),
        "KOPRU_STORE__URL": f"sqlite:///{tmp_path}/kopru.db",
        "KOPRU_SECRETS_DIR": str(secrets(tmp_path / "s", {"pos__pos_pwd": DEMO_POS_PASSWORD})),
        "KOPRU_BKM__MERCHANT_ID": MERCHANT_ID,
        "KOPRU_BKM__PRIVATE_KEY_FILE": str(keys.merchant_private),
        "KOPRU_BKM__BKM_PUBLIC_KEY_FILE": str(keys.bkm_public),
        "KOPRU_PAYMENTS__BKM_ENDPOINT": bkm_url + SERVICE_PATH,
        "KOPRU_PAYMENTS__RELAY_INTERVAL_S": "1",
        "KOPRU_POS__POS_URL": "https://pos.example.com.tr/fim/api",
        "KOPRU_POS__POS_UID": "demo-pos-user",
    }
    assert not any(k.startswith("KOPRU_MOKA") for k in os.environ)
    procs = [
        start(
            "sandbox-bkm",
            bkm_sandbox_argv(
                bkm_port, tmp_path / "bkm", [notifier_url + "/bkm/confirmation"], None
            ),
            {},
            logs,
        ),
        start("payment-notifier", cli("run", "payment-notifier"), env, logs),
    ]
    try:
        await wait_ready(procs[0], bkm_url + "/healthz")
        await wait_ready(procs[1], notifier_url + "/readyz")
        waiting = asyncio.create_task(
            kopru(broker, "payment", "bkm", "--order-id", "bkm-only-1", "--amount", "105.99",
                  "--wait", "--timeout-s", "90")
        )  # fmt: skip
        initialized = await wait_for(
            broker, BKM_INITIALIZED.name, {"order_id": "bkm-only-1"}, timeout_s=60
        )
        assert initialized and initialized[0]["event_type"] == "BkmPaymentInitialized"
        async with httpx.AsyncClient(timeout=60) as client:
            paid = await client.post(
                bkm_url + "/_sandbox/pay", json={"token": initialized[0]["token"]}
            )
        assert paid.status_code == 200, paid.text
        code, out = await waiting
        assert code == 0, out
        assert "initialized: token" in out and "confirmed (confirmation)" in out
        only(procs, procs[1], "moka")
    finally:
        stop(procs)


async def test_moka_only_notifier_serves_an_application(broker: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    port, moka_port = free_port(), free_port()
    notifier_url = f"http://127.0.0.1:{port}"
    env = {  # Moka only: no BKM key, no merchant id, no POS data
        "KOPRU_KAFKA__BOOTSTRAP_SERVERS": broker,
        "KOPRU_HTTP__PORT": str(port),
        "KOPRU_STORE__URL": f"sqlite:///{tmp_path}/kopru.db",
        "KOPRU_SECRETS_DIR": str(secrets(tmp_path / "s", {"moka__password": MOKA_DEMO_PASSWORD})),
        "KOPRU_MOKA__BASE_URL": f"http://127.0.0.1:{moka_port}",
        "KOPRU_MOKA__DEALER_CODE": MOKA_DEALER,
        "KOPRU_MOKA__USERNAME": MOKA_USER,
    }
    procs = [
        start("sandbox-moka", moka_sandbox_argv(moka_port), {}, logs),
        start("payment-notifier", cli("run", "payment-notifier"), env, logs),
    ]
    application = tmp_path / "application.json"
    application.write_text(json.dumps(DEMO_APPLICATION, ensure_ascii=False))
    try:
        await wait_ready(procs[0], f"http://127.0.0.1:{moka_port}/healthz")
        await wait_ready(procs[1], notifier_url + "/readyz")
        code, out = await kopru(
            broker, "payment", "moka-application", "--file", str(application),
            "--application-id", "moka-only-1", "--wait", "--timeout-s", "90",
        )  # fmt: skip
        assert code == 0, out
        assert "created: Success MokaPosRequestId" in out
        async with httpx.AsyncClient(timeout=10) as client:
            bkm_route = await client.post(notifier_url + "/bkm/confirmation", data={"t": "x"})
            seen = await client.get(f"http://127.0.0.1:{moka_port}/_sandbox/requests")
        assert bkm_route.status_code == 404  # BKM is off: its routes are not there
        assert [r["Title"] for r in seen.json()] == [DEMO_APPLICATION["Title"]]
        only(procs, procs[1], "BKM")
    finally:
        stop(procs)


def test_cli_refuses_a_bad_amount() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "payment", "bkm", "--order-id", "o1",
         "--amount", "lots"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "--amount" in result.stderr + result.stdout
