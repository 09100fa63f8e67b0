"""Worker pool that keeps RSA signing off the event loop.

An RSA-4096 signature costs about 8 ms of CPU (ARCHITECTURE, "Signing cost"). The
``cryptography`` package releases the GIL while OpenSSL signs, so plain threads run
signatures in parallel on several cores: measured here, 2 threads give 1.98x the signs/s
of 1 (bench/bench_signing.py prints the figure on each run). A process pool would add
pickling and a copy of the private key in every child for no gain, so the pool is a
``ThreadPoolExecutor``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def default_workers() -> int:
    """One signing thread per CPU available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class SigningPool:
    """A small named thread pool for CPU-bound signing; use one per process."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers if workers > 0 else default_workers()
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="kopru-sign"
        )

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._executor

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a signing thread and await its result."""
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        return await loop.run_in_executor(self._executor, fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self) -> SigningPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
