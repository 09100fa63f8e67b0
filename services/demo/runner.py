"""`kopru demo`: the whole system on one machine, on the embedded defaults.

1. start the local broker (tansu; or Apache Kafka with `--engine kafka`) on a free port
   and create the topic catalogue;
2. start every process the flows ask for (sandboxes, services: `kopru run ...`), each
   with its own log file under the demo's state directory, and wait until each is ready;
3. run each flow (reports, payments) and print what happened;
4. with --keep, stay up until Ctrl-C / SIGTERM (watch it with `kopru top`, which finds
   the broker and the services in <state dir>/endpoints.json);
5. stop everything (SIGTERM, then SIGKILL after a grace period), also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import IO

import httpx

from services.common.kafka.engines import engine_env, fit_settings
from services.common.kafka.kafka_cluster import KafkaCluster, prepare, wait_for_leaders
from services.common.kafka.local_broker import LocalBroker, die_with_parent
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings
from services.demo.context import DemoContext, ProcessSpec

FLOWS = ("services.demo.flow_reports", "services.demo.flow_payments")


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[tuple[ProcessSpec, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, spec: ProcessSpec, base_env: dict[str, str]) -> None:
        log = (self.log_dir / f"{spec.name}.log").open("wb")
        proc = subprocess.Popen(
            spec.argv,
            env={**os.environ, **base_env, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        self.running.append((spec, proc, log))

    async def wait_ready(self, timeout_s: float = 180.0) -> None:  # slow, shared CI machines
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            for spec, proc, _ in self.running:
                if not spec.ready_url:
                    continue
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{spec.name} exited with {proc.returncode}; "
                            f"see {self.log_dir / (spec.name + '.log')}"
                        )
                    try:
                        if (await client.get(spec.ready_url)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{spec.name} not ready at {spec.ready_url}")
                    await asyncio.sleep(0.2)

    def stop(self, grace_s: float = 15.0) -> None:
        for _, proc, _ in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for _, proc, log in reversed(self.running):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        self.running.clear()


def write_endpoints(path: Path, bootstrap: str, procs: Processes) -> None:
    """Where `kopru top` and `kopru dlq list` find the running demo."""
    services = {
        spec.name: spec.ready_url.removesuffix("/readyz")
        for spec, _, _ in procs.running
        if spec.ready_url and spec.ready_url.endswith("/readyz")
    }
    path.write_text(json.dumps({"bootstrap": bootstrap, "services": services}, indent=2) + "\n")


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _flows() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FLOWS]


async def demo(state_dir: Path, keep: bool = False, engine: str = "tansu") -> None:
    log_dir = state_dir / "logs"
    started = time.monotonic()
    broker: LocalBroker | KafkaCluster = (
        KafkaCluster(1, dist=await prepare()) if engine == "kafka" else LocalBroker()
    )
    async with broker:
        kafka = fit_settings(KafkaSettings(bootstrap_servers=broker.bootstrap_servers), engine)
        created = await create_topics(kafka)
        await wait_for_leaders(broker.bootstrap_servers, [t.name for t in plan(kafka)])
        print(
            f"local broker ({engine}) on {broker.bootstrap_servers}: {len(created)} topics created"
        )
        ctx = DemoContext(
            bootstrap=broker.bootstrap_servers,
            state_dir=state_dir,
            base_env={
                "KOPRU_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
                "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
                **engine_env(engine),  # e.g. no idempotent producer on tansu
                "KOPRU_LOG__FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
            },
        )
        flows = _flows()
        procs = Processes(log_dir)
        try:
            for flow in flows:
                for spec in flow.processes(ctx):
                    procs.start(spec, ctx.base_env)
            names = ", ".join(s.name for s, _, _ in procs.running)
            print(f"started {len(procs.running)} processes: {names}")
            await procs.wait_ready()
            print(f"all ready after {time.monotonic() - started:.1f} s (logs in {log_dir})")
            write_endpoints(state_dir / "endpoints.json", broker.bootstrap_servers, procs)
            for flow in flows:
                await flow.run(ctx)
            if keep:
                print(f"flows done; running until Ctrl-C (`kopru top`, {state_dir}/endpoints.json)")
                sys.stdout.flush()
                await _wait_for_stop()
        finally:
            procs.stop()
    print(f"demo finished in {time.monotonic() - started:.1f} s; everything stopped")


def run_demo(state_dir: Path | None = None, keep: bool = False, engine: str = "tansu") -> None:
    target = state_dir or Path(os.environ.get("KOPRU_DEMO_DIR", ".kopru/demo"))
    (target / "logs").mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(demo(target, keep, engine))
    except KeyboardInterrupt:
        print("demo interrupted; everything stopped", file=sys.stderr)
