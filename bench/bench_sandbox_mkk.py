"""MKK sandbox: make and serve a 1,000,000-row balance report, as a separate process.

Starts `python -m services.sandbox.mkk` on a free port with a 1M-row ledger, then, as
a plain HTTP client: token, balance-report (csv), status polls until 0000, and the
download of the zip over HTTP, streamed to disk. Prints the times and the sandbox's
peak RSS (VmHWM from /proc; goal under 200 MB), next to a baseline: the same rows
written with plain csv + pyzipper (AES-256) inside this process, no HTTP.

Run: `python -m bench sandbox` (or `python -m bench.bench_sandbox_mkk`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyzipper
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import RSAKey

from schemas.mkk import CSV_COLUMNS, ReportStatusAnswer
from services.sandbox.mkk.config import LedgerConfig
from services.sandbox.mkk.ledger import Ledger

ROWS = int(os.environ.get("KOPRU_BENCH_MKK_ROWS", "1000000"))
PASSWORD = "Bench1234"
GOAL_MB = 200
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _baseline(path: Path) -> float:
    """Plain csv + pyzipper, same rows, same cipher, in this process."""
    ledger = Ledger(LedgerConfig(rows=ROWS))
    started = time.perf_counter()
    with pyzipper.AESZipFile(
        path, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as zf:
        zf.setpassword(PASSWORD.encode())
        with zf.open("baseline.csv", "w", force_zip64=True) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            writer.writerows(ledger.rows("TIB", "20250505", {}))
            text.flush()
            text.detach()
    return time.perf_counter() - started


def _run_client(url: str, state: Path, out: Path) -> dict[str, float]:
    member = RSAKey.import_key((state / "members/TIB/key.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((state / "mkk/cert.pem").read_bytes())
    mkk = RSAKey.import_key(
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    refs = iter(range(1, 1_000_000))

    def head() -> dict[str, str]:
        return {"senderReference": f"BENCH{next(refs)}", "senderMember": "TIB", "sender": "TIB991"}

    with httpx.Client(base_url=url, timeout=120) as http:
        r = http.post(
            "/v1/auth", json={"requestHeader": head(), "username": "TIB991", "password": "Demo991!"}
        )
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['token']}", "Sender": "TIB"}

        def call(path: str, payload: dict[str, object]) -> dict[str, object]:
            body = jws.serialize_compact({"alg": "RS256"}, json.dumps(payload), member)
            resp = http.post(path, content=body, headers=h)
            out: dict[str, object] = json.loads(jws.deserialize_compact(resp.text, mkk).payload)
            return out

        started = time.perf_counter()
        answer = call(
            "/v1/reports/account/balance-report",
            {"requestHeader": head(), "fileType": "csv", "zipPassword": PASSWORD,
             "processDate": "20250505"},
        )  # fmt: skip
        ref_id = answer["refId"]
        while True:
            status = call(
                "/v1/reports/async-report-status", {"requestHeader": head(), "refId": ref_id}
            )
            code = status["response"]["responseCode"]  # type: ignore[index]
            if code == "0000":
                break
            if code not in ("RP020", "RP021", "RP022", "RP023"):
                raise RuntimeError(f"report failed: {code}")
            time.sleep(0.05)
        ready = time.perf_counter()
        name = (ReportStatusAnswer.model_validate(status).file_names or [""])[0]
        payload = {"requestHeader": head(), "refId": ref_id, "fileName": name}
        body = jws.serialize_compact({"alg": "RS256"}, json.dumps(payload), member)
        with http.stream("POST", "/v1/reports/async-report-content", content=body, headers=h) as s:
            s.raise_for_status()
            with out.open("wb") as fh:
                for chunk in s.iter_bytes(1 << 16):
                    fh.write(chunk)
        done = time.perf_counter()
    return {"generate_s": ready - started, "download_s": done - ready, "total_s": done - started}


def _count_rows(path: Path) -> int:
    with pyzipper.AESZipFile(path) as zf:
        zf.setpassword(PASSWORD.encode())
        with zf.open(zf.namelist()[0]) as fh:
            return sum(1 for _ in fh) - 1


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kopru-bench-mkk-") as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "mkk.yaml"
        config.write_text(
            f"ledger: {{rows: {ROWS}}}\nreport_lock: 'off'\n"
            "durations: {rp020_s: 0, rp021_s: 0, rp022_s: 0, rp023_s: 0}\n"
        )
        port = _free_port()
        cmd = [sys.executable, "-m", "services.sandbox.mkk", "--port", str(port),
               "--config", str(config), "--state-dir", str(tmp / "state"),
               "--log-level", "warning"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("the sandbox did not start") from None
                    time.sleep(0.1)
            idle_mb = _peak_rss_mb(proc.pid)
            out = tmp / "report.zip"
            figures = _run_client(f"http://127.0.0.1:{port}", tmp / "state", out)
            peak_mb = _peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        size_mb = out.stat().st_size / 1e6
        rows = _count_rows(out)
        baseline_s = _baseline(tmp / "baseline.zip")
    ratio = figures["total_s"] / baseline_s
    print(f"rows: {rows:,} (csv, AES-256 zip of {size_mb:.1f} MB)")
    print(f"sandbox, separate process, over HTTP: request to ready {figures['generate_s']:.2f} s,"
          f" download {figures['download_s']:.2f} s, total {figures['total_s']:.2f} s")  # fmt: skip
    verdict = "ok" if peak_mb < GOAL_MB else "OVER"
    print(f"sandbox peak RSS (VmHWM): {peak_mb:.1f} MB (idle {idle_mb:.1f} MB),"
          f" goal < {GOAL_MB} MB: {verdict}")  # fmt: skip
    print(f"baseline, plain csv + pyzipper in-process: {baseline_s:.2f} s")
    print(f"ratio sandbox total / baseline: {ratio:.2f}x")
    if rows != ROWS:
        raise RuntimeError(f"expected {ROWS} rows, the zip holds {rows}")


if __name__ == "__main__":
    main()
