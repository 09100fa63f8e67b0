"""The sandbox as a real server: `python -m services.sandbox.mkk` over TCP (and TLS)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyzipper
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import RSAKey

from schemas.mkk import ReportStatusAnswer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
durations: {rp020_s: 0.2, rp021_s: 0.2, rp022_s: 0.2, rp023_s: 0.2}
ledger: {rows: 20000}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    (tmp / "mkk.yaml").write_text(CONFIG)
    cmd = [sys.executable, "-m", "services.sandbox.mkk", "--port", str(port),
           "--config", str(tmp / "mkk.yaml"), "--state-dir", str(tmp / "state"),
           "--log-level", "warning", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("sandbox did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("mkk-server")
    proc, port = _start(tmp)
    yield f"http://127.0.0.1:{port}", tmp / "state"
    _stop(proc)


def _keys(state: Path) -> tuple[RSAKey, RSAKey]:
    member = RSAKey.import_key((state / "members/TIB/key.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((state / "mkk/cert.pem").read_bytes())
    mkk = RSAKey.import_key(
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return member, mkk


def _flow(http: httpx.Client, member: RSAKey, mkk: RSAKey, tag: str) -> bytes:
    def head(n: int) -> dict[str, str]:
        return {"senderReference": f"{tag}-{n}", "senderMember": "TIB", "sender": "TIB991"}

    r = http.post("/v1/auth", json={"requestHeader": head(0), "username": "TIB991",
                                    "password": "Demo991!"})  # fmt: skip
    assert r.status_code == 200, r.text
    h = {"Authorization": f"Bearer {r.json()['token']}", "Sender": "TIB",
         "Content-Type": "text/plain"}  # fmt: skip

    def call(path: str, payload: dict[str, object]) -> httpx.Response:
        return http.post(path, content=jws.serialize_compact(
            {"alg": "RS256"}, json.dumps(payload), member), headers=h)  # fmt: skip

    def verify(r: httpx.Response) -> dict[str, object]:
        out: dict[str, object] = json.loads(jws.deserialize_compact(r.text, mkk).payload)
        return out

    body = verify(call("/v1/reports/account/balance-report", {
        "requestHeader": head(1), "fileType": "csv", "zipPassword": "Secret123",
        "processDate": "20250505"}))  # fmt: skip
    ref_id = body["refId"]
    for n in range(2, 200):
        r = call("/v1/reports/async-report-status", {"requestHeader": head(n), "refId": ref_id})
        status = verify(r)
        if status["response"]["responseCode"] == "0000":  # type: ignore[index]
            break
        time.sleep(0.1)
    name = (ReportStatusAnswer.model_validate(status).file_names or [""])[0]
    r = call("/v1/reports/async-report-content",
             {"requestHeader": head(999), "refId": ref_id, "fileName": name})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    return r.content


@pytest.mark.integration
def test_whole_flow_over_tcp(server: tuple[str, Path]) -> None:
    url, state = server
    member, mkk = _keys(state)
    with httpx.Client(base_url=url, timeout=30) as http:
        data = _flow(http, member, mkk, "tcp")
        with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
            zf.setpassword(b"Secret123")
            text = zf.read(zf.namelist()[0]).decode()
        assert text.startswith("BAKIYE_TARIHI,UYE,HESAP,")
        assert len(text.splitlines()) == 20001
        rows = http.get("/_sandbox/requests", params={"endpoint": "balance-report"}).json()
        assert [r["sender_reference"] for r in rows["requests"]] == ["tcp-1"]


@pytest.mark.integration
def test_dropped_connection_over_tcp(server: tuple[str, Path]) -> None:
    url, _ = server
    with httpx.Client(base_url=url, timeout=10) as http:
        http.put("/_sandbox/faults", json={"drop_rate": 1.0, "endpoints": ["auth"]})
        try:
            with pytest.raises(httpx.TransportError):
                http.post("/v1/auth", json={"requestHeader": {"senderReference": "drop-1",
                          "senderMember": "TIB", "sender": "TIB991"}, "username": "TIB991",
                          "password": "Demo991!"})  # fmt: skip
        finally:
            http.put("/_sandbox/faults", json={})
        rows = http.get("/_sandbox/requests", params={"sender_reference": "drop-1"}).json()
        assert rows["requests"][0]["fault"] == "dropped"


@pytest.mark.integration
def test_tls(tmp_path: Path) -> None:
    proc, port = _start(tmp_path, "--tls")
    try:
        state = tmp_path / "state"
        member, mkk = _keys(state)
        trust = ssl.create_default_context(cafile=state / "tls/cert.pem")
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", timeout=30, verify=trust) as http:
            assert _flow(http, member, mkk, "tls")[:2] == b"PK"
    finally:
        _stop(proc)
    assert proc.returncode is not None
    assert os.path.exists(state / "tls/key.pem")
