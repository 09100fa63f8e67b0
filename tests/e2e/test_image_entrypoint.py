"""The image's command line, run on the host: the final stage's ENTRYPOINT (tini) and the
Deployment's args (`kopru run <service>`), with the image's ENV, the local overlay's
ConfigMap and the Deployment's env, in that order of precedence as in a pod. Paths of the
pod's volumes (secrets, data, Kafka CA) map to temporary directories; the broker is the
local one. Every service must start, answer /healthz and /readyz, log JSON only, and on
SIGTERM (sent to tini, as the kubelet does) drain and exit 0 within the pod's grace period.

There is no container engine on the build machines (deploy/README.md says what was tried);
`make image` builds the real image with buildah where a base image can be had."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.common.kafka.local_broker import LocalBroker
from services.common.kafka.topic_admin import create_topics
from services.sandbox.bkm.keys import ensure_demo_keys as bkm_demo_keys
from services.sandbox.mkk.config import DEMO_PASSWORD
from services.sandbox.mkk.keys import ensure_demo_keys as mkk_demo_keys
from tests.conftest import local_kafka_settings, unavailable
from tests.e2e.conftest import _free_port

pytestmark = pytest.mark.e2e

# What an operator adds to the overlay for payment-notifier (not secrets, not defaults).
PAYMENT_CONFIG = {
    "KOPRU_BKM__MERCHANT_ID": "kopru-demo-merchant",
    "KOPRU_POS__POS_URL": "https://pos.example.com.tr/fim/api",
    "KOPRU_POS__POS_UID": "demo-pos-user",
    "KOPRU_MOKA__DEALER_CODE": "1356",
    "KOPRU_MOKA__USERNAME": "kopru-demo",
}

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def final_stage(containerfile: Path = DEPLOY / "Containerfile") -> dict[str, Any]:
    """ENTRYPOINT, CMD, ENV, USER and WORKDIR of the last stage."""
    lines: list[str] = []
    for raw in containerfile.read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + raw.strip()
        elif raw.strip():
            lines.append(raw.strip())
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    stage: dict[str, Any] = {"env": {}}
    for line in lines[last_from + 1 :]:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word in ("ENTRYPOINT", "CMD"):
            stage[word.lower()] = json.loads(rest)
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage["env"][key] = value
        elif word in ("USER", "WORKDIR"):
            stage[word.lower()] = rest.strip()
    return stage


def _literals(path: Path) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text())
    out: dict[str, str] = {}
    for gen in doc.get("configMapGenerator", []):
        for lit in gen.get("literals", []):
            key, _, value = lit.partition("=")
            out[key] = value
    return out


def deployment(name: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((DEPLOY / "base" / "services.yaml").read_text())
    (d,) = [d for d in docs if d and d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    return d


def pod_env(name: str, image_env: dict[str, str]) -> dict[str, str]:
    """What the container sees: image ENV < envFrom (local overlay ConfigMap) < env."""
    config = _literals(DEPLOY / "base" / "kustomization.yaml")
    config.update(_literals(DEPLOY / "overlays" / "local" / "kustomization.yaml"))
    (container,) = deployment(name)["spec"]["template"]["spec"]["containers"]
    env = {**image_env, **config}
    env.update({e["name"]: e["value"] for e in container["env"]})
    return env


def _host_path(value: str, mapping: dict[str, Path]) -> str:
    for prefix, target in mapping.items():
        value = value.replace(prefix, str(target))
    return value


async def _secrets(directory: Path, keys_dir: Path) -> None:
    """The files of each service's Secret, named as the Deployments expect them."""
    directory.mkdir(parents=True)
    mkk, bkm = await asyncio.gather(  # RSA key generation: the two in parallel
        asyncio.to_thread(mkk_demo_keys, keys_dir / "mkk"),
        asyncio.to_thread(bkm_demo_keys, keys_dir / "bkm"),
    )
    (directory / "mkk-password").write_text(DEMO_PASSWORD)
    (directory / "pos__pos_pwd").write_text("demo-pos-Pa55!")
    (directory / "moka__password").write_text("demo-password")
    shutil.copy(mkk.member_key, directory / "mkk-member.key")
    shutil.copy(mkk.member_certificate, directory / "mkk-member.crt")
    shutil.copy(mkk.mkk_certificate, directory / "mkk.crt")
    shutil.copy(bkm.merchant_private, directory / "bkm-merchant.key")
    shutil.copy(bkm.bkm_public, directory / "bkm-public.pem")


SERVICE_NAMES = ("auth-token", "report-requester", "status-poller", "content-fetcher",
                 "payment-notifier")  # fmt: skip


async def _wait_ready(
    procs: dict[str, tuple[subprocess.Popen[bytes], int, Path]], timeout_s: float
) -> None:
    """Every process answers 200 on /healthz and /readyz, none exits meanwhile."""
    ready: set[str] = set()
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while len(ready) < len(procs) and time.monotonic() < deadline:
            for name, (proc, port, log) in procs.items():
                if name in ready:
                    continue
                assert proc.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"
                try:
                    health = await http.get(f"http://127.0.0.1:{port}/healthz")
                    readyz = await http.get(f"http://127.0.0.1:{port}/readyz")
                except httpx.HTTPError:
                    continue
                if health.status_code == 200 and readyz.status_code == 200:
                    ready.add(name)
            await asyncio.sleep(0.3)
    missing = {n: p[2].read_text()[-2000:] for n, p in procs.items() if n not in ready}
    assert not missing, missing


@pytest.mark.timeout(600)
async def test_each_service_starts_from_the_image_command_line_and_stops_on_sigterm(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    tini = shutil.which("tini")
    if tini is None:
        unavailable("tini is not installed (apt-get install tini; .ci/run installs it)")
    stage = final_stage()
    assert stage["entrypoint"][:2] == ["/usr/bin/tini", "--"]
    assert stage["user"].split(":")[0] != "0" and stage["user"] != "root"
    kafka = local_kafka_settings(kafka_broker.bootstrap_servers)
    await create_topics(kafka)  # the Topic Operator's job in the cluster

    venv_bin = Path(sys.executable).parent
    mapping = {
        "/run/secrets/kopru": tmp_path / "secrets",
        "/run/kafka-ca": tmp_path / "kafka-ca",
        "/opt/kopru/bin": venv_bin,
    }
    await _secrets(tmp_path / "secrets", tmp_path / "keys")
    procs: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name in SERVICE_NAMES:
            data = tmp_path / name / "data"  # the pod's data emptyDir, also WORKDIR
            data.mkdir(parents=True)
            this = {**mapping, stage["workdir"]: data}
            env = {k: _host_path(v, this) for k, v in pod_env(name, stage["env"]).items()}
            env["PATH"] = env["PATH"].replace("$PATH", os.environ["PATH"])
            port = _free_port()
            env.update(
                {
                    "HOME": "/nonexistent",  # the image's user has no home
                    # tini is PID 1 in the pod; here it must ask to reap orphans instead.
                    "TINI_SUBREAPER": "1",
                    "KOPRU_HTTP__PORT": str(port),
                    "KOPRU_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                    "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
                    "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
                    "KOPRU_KAFKA__RETRY_TIERS_S": json.dumps(kafka.retry_tiers_s),
                    "KOPRU_MKK__SERVICE_HOURS": "false",
                }
            )
            if name == "payment-notifier":
                env.update(PAYMENT_CONFIG)
            (container,) = deployment(name)["spec"]["template"]["spec"]["containers"]
            argv = [tini, *stage["entrypoint"][1:], *container["args"]]
            assert container["args"] == ["run", name]
            log = tmp_path / f"{name}.log"
            procs[name] = (
                subprocess.Popen(argv, env=env, cwd=data, stdout=log.open("wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True),
                port,
                log,
            )  # fmt: skip

        await _wait_ready(procs, timeout_s=240)  # 5 interpreters starting on 2 cores

        graces = {
            n: deployment(n)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            for n in procs
        }
        started = time.monotonic()
        for proc, _, _ in procs.values():
            proc.send_signal(signal.SIGTERM)  # to tini, PID 1 in the pod
        for name, (proc, _, log) in procs.items():
            left = graces[name] - (time.monotonic() - started)
            rc = await asyncio.to_thread(proc.wait, max(left, 0.1))
            assert rc == 0, f"{name} exited {rc}:\n{log.read_text()[-3000:]}"
            # JSON logs only (the ConfigMap says so): one object per line, for the collector.
            lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
            assert lines
            for line in lines:
                assert isinstance(json.loads(line), dict), line
    finally:
        for proc, _, _ in procs.values():
            # The whole session: killing tini alone would orphan kopru.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.skipif(
    not os.environ.get("KOPRU_TEST_IMAGE"),
    reason="KOPRU_TEST_IMAGE names an image built by `make image`",
)
@pytest.mark.timeout(900)
async def test_the_built_image_serves_each_service(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    """The real image (buildah, chroot isolation, host network): its own ENTRYPOINT and
    user, the Deployment's args and env, each service ready."""
    image = os.environ["KOPRU_TEST_IMAGE"]
    buildah = ["buildah", "--storage-driver", "vfs"]
    inspect = subprocess.check_output([*buildah, "inspect", "--type", "image", image])
    config = json.loads(inspect)["OCIv1"]["config"]
    stage = final_stage()
    assert config["Entrypoint"] == stage["entrypoint"]
    assert config["User"] == stage["user"]
    kafka = local_kafka_settings(kafka_broker.bootstrap_servers)
    await create_topics(kafka)
    secrets = tmp_path / "secrets"
    await _secrets(secrets, tmp_path / "keys")
    tmp_path.chmod(0o755)
    secrets.chmod(0o755)
    for f in secrets.iterdir():
        f.chmod(0o644)  # the kubelet's projected files are readable by the pod's group
    ctr = subprocess.check_output([*buildah, "from", image], text=True).strip()
    procs: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name in SERVICE_NAMES:
            port = _free_port()
            env = pod_env(name, {})
            env.update(
                {
                    "KOPRU_HTTP__PORT": str(port),
                    "KOPRU_STORE__URL": f"sqlite:////var/lib/kopru/{name}.db",
                    "KOPRU_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                    "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
                    "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
                    "KOPRU_KAFKA__RETRY_TIERS_S": json.dumps(kafka.retry_tiers_s),
                    "KOPRU_MKK__SERVICE_HOURS": "false",
                    **(PAYMENT_CONFIG if name == "payment-notifier" else {}),
                }
            )
            (container,) = deployment(name)["spec"]["template"]["spec"]["containers"]
            argv = [*buildah, "run", "--isolation", "chroot", "--user", config["User"],
                    "-v", f"{secrets}:/run/secrets/kopru:ro"]  # fmt: skip
            for key, value in env.items():
                argv += ["--env", f"{key}={value}"]
            argv += [ctr, "--", *config["Entrypoint"], *container["args"]]
            log = tmp_path / f"{name}.log"
            out = log.open("wb")
            procs[name] = (
                subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                ),
                port,
                log,
            )
        await _wait_ready(procs, timeout_s=120)
    finally:
        for proc, _, _ in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # buildah and what runs in the image
            proc.wait()
        subprocess.run([*buildah, "rm", ctr], capture_output=True, check=False)
