"""BKM confirmations per second and latency at 64 concurrent clients, PostgreSQL store.

The payment-notifier (real broker, real PostgreSQL; WORKERS processes sharing its port,
KOPRU_HTTP__WORKERS) takes pre-signed confirmations, each a new token: verify the
signature, check ts, record the outcome and its event in PostgreSQL (durable before the
answer), answer; the outbox relay publishes on Kafka in batches. Replays are proven on a
sample (REPLAYS posts sent again, each on a new connection, so any worker may take it:
the first answer's exact bytes), then exactly once from the topic itself: one event per
token, whichever worker took the post or its replay.
The baselines are the same HTTP stack (uvicorn + starlette) answering a constant to the
same posts: `constant`, one process (the issue's baseline), and with several notifier
workers also `constant xN`, as many processes on one port with SO_REUSEPORT
(services/common/workers.py). The servers take turns, ROUNDS times (KOPRU_BENCH_ROUNDS,
default 5), each round with new tokens and new connections: a busy moment of a shared
machine falls on each of them alike. Each round the kernel spreads the 64 connections
over the notifier's workers anew (SO_REUSEPORT hashes them: 32/32 one round, 25/39 the
next), and the busier worker's clients set that round's p99; the median of five rounds
is steadier against one lopsided round than that of three. Printed: each round's figures,
then the median of the rounds: requests/s, p50 and p99 latency of each, the CPU each
server used per request (its processes only: not PostgreSQL, the broker or the client; a
figure that holds when other work shares the machine), and the notifier's ratio to each.

`python -m bench payments`; KOPRU_BENCH_WORKERS (default 2: this machine's cores) sets
the notifier's worker processes; PostgreSQL at KOPRU_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test), a database of its own, dropped after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx

from schemas.events import BKM_CONFIRMATIONS
from services.common.bkm.signature import BkmSigner
from services.common.kafka.local_broker import LocalBroker, die_with_parent, free_port
from services.common.kafka.topic_admin import create_topics, plan
from services.common.settings import KafkaSettings
from services.common.signing.certs import load_private_key
from services.common.workers import run_workers
from services.demo.flow_payments import cli, notifier_env, write_secrets
from services.sandbox.bkm.keys import ensure_demo_keys
from services.sandbox.bkm.messages import PayOptions, signed_fields

CLIENTS = 64
WARMUP = 300
REQUESTS = 4000
ROUNDS = int(os.environ.get("KOPRU_BENCH_ROUNDS", "5"))
REPLAYS = 200
NOTIFIER = "payment-notifier"
WORKERS = int(os.environ.get("KOPRU_BENCH_WORKERS", "2"))
PG_DSN = os.environ.get("KOPRU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# KOPRU_BENCH_PROFILE=out.txt: py-spy samples the notifier during its load (collapsed
# stacks, one line per stack; `python -m bench.profile_top out.txt` ranks them).
PROFILE = os.environ.get("KOPRU_BENCH_PROFILE")
CONSTANT = [sys.executable, "-m", "bench.bench_payments", "serve-constant"]
ROOT = Path(__file__).resolve().parents[1]


def serve_constant(port: int, workers: int) -> None:
    """The baseline: the same stack and processes, reading the posted form, answering a
    constant."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    answer = {"token": "t", "status": "confirmed", "order_id": None, "event_id": "e"}

    async def constant(request: Request) -> Response:
        await request.body()
        return JSONResponse(answer)

    async def ready(_: Request) -> Response:
        return JSONResponse({"status": "ready"})

    app = Starlette(
        routes=[Route("/bkm/confirmation", constant, methods=["POST"]), Route("/readyz", ready)]
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")

    def work(sock: socket.socket) -> int:
        uvicorn.Server(config).run(sockets=[sock])
        return 0

    sys.exit(run_workers(workers, "127.0.0.1", port, work, stop_s=5))


async def _database(name: str, create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


def _request(host: str, port: int, path: str, body: dict[str, str]) -> bytes:
    data = urlencode(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


Load = tuple[float, list[float], int, dict[str, bytes]]


async def _load(url: str, bodies: list[dict[str, str]], *, clients: int = CLIENTS) -> Load:
    """Post every body with ``clients`` workers, each on its own keep-alive connection:
    (seconds, latencies, non-200 answers, each token's answer: status line and body).

    A minimal HTTP/1.1 client on asyncio streams: httpx's pool itself tops out near
    200 requests/s at 64 connections on this machine and would measure the client.
    """
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait((b["t"], _request(host, port, parsed.path, b)))
    latencies: list[float] = []
    answers: dict[str, bytes] = {}
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                token, raw = queue.get_nowait()
                t0 = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                errors += head[9:12] != b"200"
                answers[token] = head[:12] + b" " + body
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started, latencies, errors, answers


async def _replays(url: str, bodies: list[dict[str, str]], first: dict[str, bytes]) -> int:
    """Post each body again, each on a new connection (the kernel picks the worker): how
    many answers are not exactly the first answer's status and bytes."""
    differ = 0
    for body in bodies:
        *_, again = await _load(url, [body], clients=1)
        differ += again[body["t"]] != first[body["t"]]
    return differ


def _profiler(pid: int) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "-o", str(PROFILE), "-f", "raw"]
    argv += ["-r", "250"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _published(bootstrap: str, tokens: set[str]) -> tuple[int, int, float]:
    """(events, distinct tokens among them, seconds until all were there), read from the
    topic itself; it keeps reading 2 s after the last expected one to see duplicates."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    started = time.monotonic()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    seen: list[str] = []
    try:
        parts = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(BKM_CONFIRMATIONS.name, p)
            for p in parts.partitions_for_topic(BKM_CONFIRMATIONS.name) or ()
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        complete_at: float | None = None
        deadline = started + 120
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                seen += [json.loads(r.value)["token"] for r in records]
            if complete_at is None and tokens <= set(seen):
                complete_at = time.monotonic()
            if complete_at is not None and time.monotonic() > complete_at + 2:
                break
    finally:
        await consumer.stop()
    relevant = [t for t in seen if t in tokens]
    return len(relevant), len(set(relevant)), (complete_at or time.monotonic()) - started


def _cpu_s(pid: int) -> float:
    """CPU seconds used so far by a server: its process and its workers (not the database
    or the broker it talks to)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        pass
    return total


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def _run(tmp: Path) -> None:
    db = f"kopru_bench_{uuid.uuid4().hex[:8]}"
    await _database(db, create=True)
    procs: list[subprocess.Popen[bytes]] = []
    broker = LocalBroker()
    try:
        broker.start()
        await broker.wait_ready()
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await create_topics(kafka, plan(kafka), with_config=False)
        keys = ensure_demo_keys(tmp / "bkm")
        port = free_port()
        env = notifier_env(
            http_port=port,
            keys=keys,
            bkm_url="http://127.0.0.1:9",
            moka_url="http://127.0.0.1:9",
            store_url=PG_DSN.rsplit("/", 1)[0] + "/" + db,
            secrets_dir=write_secrets(tmp / "secrets"),
            reconcile_after_s=3600,
        )
        env |= {
            "KOPRU_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KOPRU_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "KOPRU_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
            "KOPRU_LOG__LEVEL": "WARNING",
            "KOPRU_LOG__FORMAT": "json",
            "KOPRU_STORE__POOL_SIZE": str(max(4, 20 // WORKERS)),
            "KOPRU_HTTP__WORKERS": str(WORKERS),
            # The posts are signed before both runs: their ts ages by the run's length.
            "KOPRU_BKM__TS_TOLERANCE_S": "900",
        }
        log = (tmp / "notifier.log").open("wb")
        procs.append(
            subprocess.Popen(
                cli("run", "payment-notifier"),
                env={**os.environ, **env},
                preexec_fn=die_with_parent,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        # The baseline: one uvicorn process answering a constant; with several
        # notifier workers, also a constant server with as many (same stack, same count).
        constants: dict[str, str] = {}
        pids = {NOTIFIER: procs[0].pid}
        for count in sorted({1, WORKERS}):
            const_port = free_port()
            procs.append(
                subprocess.Popen(
                    [*CONSTANT, str(const_port), str(count)],
                    preexec_fn=die_with_parent,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            name = "constant" if count == 1 else f"constant x{count}"
            constants[name] = f"http://127.0.0.1:{const_port}"
            pids[name] = procs[-1].pid
            await _ready(constants[name] + "/readyz", procs[-1])
        notifier = f"http://127.0.0.1:{port}"
        await _ready(notifier + "/readyz", procs[0])

        signer = BkmSigner(load_private_key(keys.bkm_private))
        run = uuid.uuid4().hex[:6]
        t0 = time.perf_counter()
        bodies = [
            signed_fields(f"b{run}{i:06d}", PayOptions(), signer, "Europe/Istanbul")
            for i in range(WARMUP + ROUNDS * REQUESTS)
        ]
        print(f"signed {len(bodies)} confirmations in {time.perf_counter() - t0:.1f} s")
        servers = [*constants.items(), (NOTIFIER, notifier)]
        for _, base in servers:
            await _load(base + "/bkm/confirmation", bodies[:WARMUP])
        # Rounds alternate the servers, so a busy moment of the machine falls on each of
        # them alike; each figure below is the median of its rounds.
        rounds: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n, _ in servers}
        first: dict[str, bytes] = {}
        for r in range(ROUNDS):
            posts = bodies[WARMUP + r * REQUESTS : WARMUP + (r + 1) * REQUESTS]
            for name, base in servers:
                profile = PROFILE and name == NOTIFIER and r == 0
                spy = _profiler(procs[0].pid) if profile else None
                cpu = -_cpu_s(pids[name])
                secs, lat, errs, answers = await _load(base + "/bkm/confirmation", posts)
                cpu += _cpu_s(pids[name])
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
                if errs:
                    raise AssertionError(f"{name}: {errs} answer(s) other than 200")
                rounds[name].append(
                    (REQUESTS / secs, _pct(lat, 0.5), _pct(lat, 0.99), 1000 * cpu / REQUESTS)
                )
                if name == NOTIFIER:
                    first |= answers
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{name} {figures[-1][0]:.0f} req/s p99 {figures[-1][2]:.1f} ms"
                    f" cpu {figures[-1][3]:.2f} ms/req"
                    for name, figures in rounds.items()
                )
            )
        print(
            f"{CLIENTS} concurrent clients, {REQUESTS} posts a round, {ROUNDS} rounds "
            f"(medians), PostgreSQL store, payment-notifier on {WORKERS} worker process(es)"
        )
        print(f"{'server':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'cpu ms/req':>12}")
        med = {
            name: [statistics.median(column) for column in zip(*figures, strict=True)]
            for name, figures in rounds.items()
        }
        for name, (rps, p50, p99, cpu_ms) in med.items():
            print(f"{name:<18}{rps:>10.0f}{p50:>10.1f}{p99:>10.1f}{cpu_ms:>12.2f}")
        n_rps, n_p50, n_p99, _ = med[NOTIFIER]
        for name in constants:
            c_rps, c_p50, c_p99, _ = med[name]
            print(
                f"ratio payment-notifier ({WORKERS} worker(s)) / {name}: throughput "
                f"{n_rps / c_rps:.2f}x ({c_rps / n_rps:.1f}x lower), p50 {n_p50 / c_p50:.1f}x, "
                f"p99 {n_p99 / c_p99:.1f}x"
            )
        sample = bodies[WARMUP : WARMUP + REQUESTS : max(1, REQUESTS // REPLAYS)]
        differ = await _replays(notifier + "/bkm/confirmation", sample, first)
        print(
            f"replays: {len(sample) - differ} of {len(sample)} answered with the first "
            "answer's exact bytes, each on a new connection (any worker)"
        )
        tokens = {b["t"] for b in bodies}
        events, distinct, done_s = await _published(broker.bootstrap_servers, tokens)
        verdict = "exactly once" if events == distinct == len(tokens) else "NOT EXACTLY ONCE"
        print(
            f"events on {BKM_CONFIRMATIONS.name}: {events}, distinct tokens {distinct}, for "
            f"{len(tokens)} confirmations ({verdict}); last published {done_s:.1f} s after the load"
        )
        if verdict != "exactly once" or differ:
            raise AssertionError(f"{verdict}; {differ} replay(s) differ")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        await _database(db, create=False)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve-constant":
        serve_constant(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
