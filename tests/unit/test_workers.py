"""Several worker processes on one port (services/common/workers.py): the kernel spreads
the connections over them, a stop reaches each once, a worker that dies ends the rest."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.settings import BaseServiceSettings, HttpSettings, StoreSettings

ROOT = Path(__file__).resolve().parents[2]

# Each worker answers every connection with its pid; worker 1 exits with 3 when told to.
WORKER = textwrap.dedent(
    """
    import os, socket, sys
    from services.common.workers import run_workers

    def work(sock: socket.socket) -> int:
        sock.setblocking(True)
        while True:
            conn, _ = sock.accept()
            with conn:
                if conn.recv(16) == b"die" and os.environ["KOPRU_WORKER_INDEX"] == "1":
                    return 3
                conn.sendall(str(os.getpid()).encode())

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()
    print(port, flush=True)
    sys.exit(run_workers(2, "127.0.0.1", port, work, stop_s=2))
    """
)


def _start() -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _ask(port: int, what: bytes = b"pid") -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(what)
                return conn.recv(64).decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="Linux / BSD only")
def test_connections_are_spread_and_a_stop_reaches_every_worker() -> None:
    proc, port = _start()
    try:
        pids = {_ask(port) for _ in range(64)}
        workers = _children(proc.pid)
        assert len(workers) == 2 and {int(p) for p in pids} == workers
        proc.send_signal(signal.SIGTERM)
        # The SIGTERM passed on ends each worker (here by its default action).
        assert proc.wait(15) == 0
        assert not any(Path(f"/proc/{w}").exists() for w in workers)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="Linux / BSD only")
def test_a_worker_that_exits_ends_the_others_with_its_code() -> None:
    proc, port = _start()
    try:
        workers = set()
        deadline = time.monotonic() + 10
        while len(workers) < 2 and time.monotonic() < deadline:
            workers.add(int(_ask(port)))
        while proc.poll() is None and time.monotonic() < deadline + 10:
            _ask_quietly(port)
        assert proc.wait(15) == 3
        assert not any(Path(f"/proc/{w}").exists() for w in workers)
    finally:
        if proc.poll() is None:
            proc.kill()


def _ask_quietly(port: int) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"die")
            conn.recv(64)
    except OSError:
        pass


def test_several_workers_need_the_postgresql_store() -> None:
    with pytest.raises(ValidationError, match="needs the PostgreSQL store"):
        BaseServiceSettings(http=HttpSettings(workers=2), store=StoreSettings(url="sqlite:///x"))
    shared = StoreSettings(url="postgresql://postgres@127.0.0.1:5432/test")
    assert BaseServiceSettings(http=HttpSettings(workers=2), store=shared).http.workers == 2
