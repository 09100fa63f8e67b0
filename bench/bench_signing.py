"""RSA-4096 JWS signing: our async API against raw `cryptography`, and 1 vs 2 workers.

Prints signs/s of
- raw: `cryptography` RSA-4096 PKCS#1 v1.5 SHA-256 over the same signing input, on the
  calling thread (the baseline);
- ours, 1 worker: `JwsSigner.sign_async` through a 1-thread `SigningPool`, 64 requests
  in flight (goal: >= 0.9 x raw);
- ours, 2 workers: the same through a 2-thread pool (scaling: 2 workers / 1 worker);
- raw, 2 threads: what this machine's two cores give at best right now;
and the largest gap seen by a 1 ms ticker on the event loop while signing (the loop stays
free). Each figure is the best of 3 interleaved rounds of 1.2 s; about 16 s in all.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.common.signing.jws import JwsSigner, b64url_encode
from services.common.signing.pool import SigningPool

SECONDS = 1.2
ROUNDS = 3  # interleaved; the best round counts (the machine is shared)
IN_FLIGHT = 64

PAYLOAD = json.dumps(
    {
        "requestHeader": {
            "senderReference": "KOPRU-20260101-000001",
            "senderMember": "TIB",
            "sender": "TIB991",
        },
        "fileType": "json",
        "zipPassword": "Sifre2026Zip",
        "processDate": "20260101",
        "accClass": "B",
    },
    separators=(",", ":"),
).encode()


def raw_rate(key: rsa.RSAPrivateKey, signing_input: bytes, threads: int = 1) -> float:
    """Raw signs/s on ``threads`` plain threads (1 = the calling thread)."""
    counts = [0] * threads
    start = time.perf_counter()

    def loop(i: int) -> None:
        while time.perf_counter() - start < SECONDS:
            key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
            counts[i] += 1

    if threads == 1:
        loop(0)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(loop, range(threads)))
    return sum(counts) / (time.perf_counter() - start)


async def ours_rate(key: rsa.RSAPrivateKey, workers: int) -> tuple[float, float]:
    """signs/s through sign_async, and the largest event-loop gap (ms) meanwhile."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    with SigningPool(workers) as pool:
        signer = JwsSigner(key, executor=pool.executor)
        await signer.sign_async(PAYLOAD)  # warm up the threads
        tick = asyncio.create_task(ticker())
        n = 0
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal n
            while time.perf_counter() - start < SECONDS:
                await signer.sign_async(PAYLOAD)
                n += 1

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - start
        stop.set()
        await tick
    return n / elapsed, max(gaps) * 1000


def main() -> None:
    key = rsa.generate_private_key(65537, 4096)
    signing_input = b64url_encode(b'{"alg":"RS256"}') + b"." + b64url_encode(PAYLOAD)
    assert JwsSigner(key).sign(PAYLOAD).startswith(signing_input.decode())

    rounds: dict[str, list[float]] = {"raw1": [], "one": [], "two": [], "raw2": []}
    gaps: dict[str, list[float]] = {"one": [], "two": []}
    for _ in range(ROUNDS):
        rounds["raw1"].append(raw_rate(key, signing_input))
        for name, workers in (("one", 1), ("two", 2)):
            rate, gap = asyncio.run(ours_rate(key, workers))
            rounds[name].append(rate)
            gaps[name].append(gap)
        rounds["raw2"].append(raw_rate(key, signing_input, threads=2))
    raw, one, two, raw2 = (max(rounds[k]) for k in ("raw1", "one", "two", "raw2"))
    gap1, gap2 = max(gaps["one"]), max(gaps["two"])

    w = 30
    print(f"payload {len(PAYLOAD)} bytes, RSA-4096 RS256, best of {ROUNDS} x {SECONDS:.1f} s")
    print(f"{'raw cryptography, 1 thread':<{w}}{raw:7.1f} signs/s  baseline")
    print(
        f"{'kopru sign_async, 1 worker':<{w}}{one:7.1f} signs/s  ratio {one / raw:.2f} (goal 0.9)"
    )
    print(f"{'kopru sign_async, 2 workers':<{w}}{two:7.1f} signs/s  2w/1w {two / one:.2f}")
    print(
        f"{'raw cryptography, 2 threads':<{w}}{raw2:7.1f} signs/s  2t/1t {raw2 / raw:.2f} (ceiling)"
    )
    print(f"event-loop max gap while signing: {gap1:.1f} ms (1 worker), {gap2:.1f} ms (2 workers)")


if __name__ == "__main__":
    main()
