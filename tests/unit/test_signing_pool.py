"""Signing runs on the pool's threads; the event loop keeps serving meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.signing.jws import JwsSigner, JwsVerifier
from services.common.signing.pool import SigningPool, default_workers


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 4096)


def test_default_workers_is_cpu_count() -> None:
    assert default_workers() >= 1
    with SigningPool() as pool:
        assert pool.workers == default_workers()
    with SigningPool(3) as pool:
        assert pool.workers == 3


async def test_sign_async_runs_on_pool_threads(key: rsa.RSAPrivateKey) -> None:
    seen: set[str] = set()
    with SigningPool(2) as pool:
        signer = JwsSigner(key, executor=pool.executor)
        original = signer.sign

        def spy(payload: bytes) -> str:
            seen.add(threading.current_thread().name)
            return original(payload)

        signer.sign = spy  # type: ignore[method-assign]
        tokens = await asyncio.gather(*(signer.sign_async(b'{"n":%d}' % i) for i in range(6)))
    verifier = JwsVerifier(key.public_key())
    assert [verifier.verify(t) for t in tokens] == [b'{"n":%d}' % i for i in range(6)]
    assert seen and all(name.startswith("kopru-sign") for name in seen)
    assert threading.main_thread().name not in seen


async def test_event_loop_keeps_ticking_while_signing(key: rsa.RSAPrivateKey) -> None:
    """Had the signatures run on the loop, no tick could happen before they were done."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.002)

    with SigningPool(2) as pool:
        signer = JwsSigner(key, executor=pool.executor)
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # the ticker starts
        started = time.perf_counter()
        await asyncio.gather(*(signer.sign_async(b"{}") for _ in range(16)))
        finished = time.perf_counter()
        done.set()
        await task
    during = [t for t in ticks if started < t < finished]
    assert len(during) >= 3, f"{len(during)} ticks in {finished - started:.3f} s of signing"


async def test_pool_run_passes_arguments() -> None:
    with SigningPool(1) as pool:
        assert await pool.run(pow, 2, 10) == 1024
        assert await pool.run(int, "ff", base=16) == 255
