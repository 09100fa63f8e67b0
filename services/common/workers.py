"""Several worker processes for one service's HTTP port (``KOPRU_HTTP__WORKERS``).

Python runs one request at a time per process; a service whose HTTP side is CPU-bound
(the payment-notifier's confirmations: parse, verify, scrub, record) uses more cores with
more processes. ``kopru run`` with ``workers > 1`` becomes a small supervisor:

- it reserves the port (a socket bound with SO_REUSEPORT, never listening: it takes no
  connection, it only holds the port, also when the port asked for is 0);
- it forks the workers before any event loop, thread or connection exists; each binds its
  own listening socket to that port with SO_REUSEPORT, and the kernel spreads the
  connections over them;
- each worker (``KOPRU_WORKER_INDEX`` 0..N-1 in its environment) is a whole replica (its
  own broker clients, store pool, relay and loops), exactly like another pod: what holds
  across replicas (the stores decide, PostgreSQL shared) holds across workers. Several
  workers therefore need the PostgreSQL store;
- a worker listens from the moment it is forked: a connection the kernel gives it while
  it is still starting waits in its backlog until it serves (a readiness probe that lands
  there waits too, so the pod is ready once every worker is);
- SIGTERM / SIGINT to the supervisor is passed on once, as SIGTERM, to every worker; the
  workers are in their own process group (a Ctrl-C reaches the supervisor only) and die
  with it (PR_SET_PDEATHSIG);
- a worker that exits on its own ends the others, and the supervisor exits with its
  code: a half-running service is not left serving (Kubernetes restarts the pod).

/readyz, /healthz and /metrics are answered by the worker that takes the connection:
each tells that worker's own state and counters.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

PR_SET_PDEATHSIG = 1
KILL_AFTER_S = 5.0
POLL_S = 0.25  # how often the supervisor looks for ended workers (signals are passed on at once)


def reuse_port_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, listening or not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
        sock.setblocking(False)
    return sock


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_workers(
    count: int, host: str, port: int, work: Callable[[socket.socket], int], *, stop_s: float
) -> int:
    """Fork ``count`` workers, each calling ``work(its listening socket)`` and exiting with
    what it returns; wait for them and return the exit code (0 if all ended well). A worker
    still running ``stop_s`` after the stop began is killed."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not Linux / BSD
        raise OSError("several HTTP workers need SO_REUSEPORT")
    holder = reuse_port_socket(host, port, listen=False)
    port = holder.getsockname()[1]
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, int] = {}
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.setpgid(0, 0)
                _die_with_parent()
                holder.close()
                os.environ["KOPRU_WORKER_INDEX"] = str(index)
                code = work(reuse_port_socket(host, port, listen=True))
            except BaseException as exc:  # the worker's last word, then out
                code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index
    try:
        return _supervise(children, stop_s + KILL_AFTER_S)
    finally:
        holder.close()


def _supervise(children: dict[int, int], kill_after_s: float) -> int:
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            _signal_all(children, signal.SIGTERM)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    kill_at: float | None = None
    try:
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if stopping and kill_at is None:
                    kill_at = time.monotonic() + kill_after_s
                if kill_at is not None and time.monotonic() >= kill_at:
                    _signal_all(children, signal.SIGKILL)
                time.sleep(POLL_S)
                continue
            children.pop(pid, None)
            exit_code = os.waitstatus_to_exitcode(status)
            if exit_code != 0 and not (stopping and exit_code < 0):
                code = code or (exit_code if exit_code > 0 else 1)
            if not stopping:  # a worker ended by itself: end the others
                stopping = True
                _signal_all(children, signal.SIGTERM)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _signal_all(children: dict[int, int], sig: signal.Signals) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
