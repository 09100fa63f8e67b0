"""Shared fixtures and a plain MKK client (httpx + joserfc only, none of kopru's client
code) for the sandbox tests. Keys are made once per session and copied per test."""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import RSAKey

from services.sandbox.mkk import create_app, sandbox_state
from services.sandbox.mkk.config import DEMO_PASSWORD, SandboxConfig
from services.sandbox.mkk.keys import ensure_member_key, ensure_mkk_key
from services.sandbox.mkk.state import SandboxState

# The guide's sample bodies, verbatim (§3.2.4, §5.1.4, §6.1.4, §6.2.4).
SAMPLE_AUTH = {
    "requestHeader": {
        "senderReference": "GK20230601Token001",
        "senderMember": "TIB",
        "sender": "TIB991",
    },
    "username": "TIB991",
    "password": "*******",
}
SAMPLE_BALANCE = {
    "requestHeader": {"senderReference": "MKKTEST100", "senderMember": "TIB", "sender": "TIB991"},
    "processDate": "20250505",
    "subAccNo": "SERB",
    "isin": "TRAGARAN91N1",
    "secClass": "HS",
    "secType": "HS",
    "accNo": "1",
    "zipPassword": "Mkktest1*",
    "fileType": "json",
}
SAMPLE_STATUS = {
    "requestHeader": {"senderReference": "MKKTEST100", "senderMember": "TIB", "sender": "TIB991"},
    "refId": "e7M7RhX2xUzR3uAjsb2s",
}
SAMPLE_CONTENT = {
    "requestHeader": {"senderReference": "MKKTEST100", "senderMember": "TIB", "sender": "TIB991"},
    "refId": "1UKwQWHOP0PQTwH38U0D",
    "fileName": "MKK_RP166_20250728132033.zip",
}

AUTH = "/v1/auth"
BALANCE = "/v1/reports/account/balance-report"
STATUS = "/v1/reports/async-report-status"
CONTENT = "/v1/reports/async-report-content"


def sample(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for k, v in changes.items():
        if k in ("senderReference", "senderMember", "sender"):
            out["requestHeader"][k] = v
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mkk-keys")
    ensure_mkk_key(d, 2048)
    ensure_member_key(d, "TIB", "Demo Yatırım Menkul Değerler A.Ş.", "TR", 4096)
    ensure_member_key(d, "ABC", "Başka Aracı Kurum A.Ş.", "TR", 2048)
    return d


def make_config(keys_dir: Path, state_dir: Path, **data: Any) -> SandboxConfig:
    shutil.copytree(keys_dir, state_dir, dirs_exist_ok=True)
    data.setdefault("durations", {"rp020_s": 0, "rp021_s": 0, "rp022_s": 0, "rp023_s": 0})
    return SandboxConfig.model_validate({"state_dir": state_dir, **data})


def two_members() -> list[dict[str, Any]]:
    return [
        {"code": "TIB", "users": [{"username": "TIB991", "password": DEMO_PASSWORD}]},
        {
            "code": "ABC",
            "title": "Başka Aracı Kurum A.Ş.",
            "users": [{"username": "ABC991", "password": "Abc991!x"}],
        },
    ]


@functools.cache
def load_key(path: Path) -> RSAKey:
    # Loading an RSA-4096 private key checks it (~0.3 s): once per session.
    return RSAKey.import_key(path.read_bytes())


@functools.cache
def load_cert_key(path: Path) -> RSAKey:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return RSAKey.import_key(pem)


class MkkClient:
    """What an integrator writes by hand from the guide."""

    _refs = itertools.count(1)

    def __init__(self, http: httpx.AsyncClient, key_path: Path, mkk_cert: Path) -> None:
        self.http = http
        self.member, self.user, self.password = "TIB", "TIB991", DEMO_PASSWORD
        self.key = load_key(key_path)
        self.mkk = load_cert_key(mkk_cert)
        self.token: str | None = None

    def ref(self) -> str:
        return f"T{next(self._refs):08d}"

    def header(self, reference: str | None = None) -> dict[str, str]:
        return {
            "senderReference": reference or self.ref(),
            "senderMember": self.member,
            "sender": self.user,
        }

    async def auth(self, **changes: Any) -> httpx.Response:
        body = {"requestHeader": self.header(), "username": self.user, "password": self.password}
        body.update(changes)
        r = await self.http.post(AUTH, json=body)
        if r.status_code == 200:
            self.token = r.json()["token"]
        return r

    def sign(self, payload: dict[str, Any], key: RSAKey | None = None) -> str:
        data = json.dumps(payload).encode()
        return jws.serialize_compact({"alg": "RS256"}, data, key or self.key)

    def verify(self, text: str) -> dict[str, Any]:
        obj = jws.deserialize_compact(text, self.mkk, algorithms=["RS256"])
        out: dict[str, Any] = json.loads(obj.payload)
        return out

    async def post(
        self,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        body: str | None = None,
        token: str | None = None,
        sender: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if self.token is None and token is None:
            await self.auth()
        h = {
            "Authorization": f"Bearer {token or self.token}",
            "Sender": sender or self.member,
            "Content-Type": "text/plain",
        }
        if headers is not None:
            h = headers
        content = body if body is not None else self.sign(payload or {})
        return await self.http.post(path, content=content, headers=h)

    async def call(
        self, path: str, payload: dict[str, Any], **kw: Any
    ) -> tuple[int, dict[str, Any]]:
        r = await self.post(path, payload, **kw)
        return r.status_code, self.verify(r.text)

    async def balance(self, **fields: Any) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "requestHeader": self.header(fields.pop("reference", None)),
            "fileType": "csv",
            "zipPassword": "Secret123",
            "processDate": "20250505",
        }
        body.update(fields)
        return await self.call(BALANCE, {k: v for k, v in body.items() if v is not None})

    async def status(self, ref_id: str) -> tuple[int, dict[str, Any]]:
        return await self.call(STATUS, {"requestHeader": self.header(), "refId": ref_id})

    async def content(self, ref_id: str, file_name: str) -> httpx.Response:
        payload = {"requestHeader": self.header(), "refId": ref_id, "fileName": file_name}
        return await self.post(CONTENT, payload)

    async def wait_final(self, ref_id: str, timeout: float = 20) -> tuple[int, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            status, body = await self.status(ref_id)
            code = body["response"]["responseCode"]
            if code not in ("RP020", "RP021", "RP022", "RP023") or loop.time() > end:
                return status, body
            await asyncio.sleep(0.02)


def code_of(body: dict[str, Any]) -> str:
    if "response" in body:
        return str(body["response"]["responseCode"])
    return str(body["responseCode"])


@pytest.fixture
def sandbox_config(keys_dir: Path, tmp_path: Path) -> SandboxConfig:
    return make_config(keys_dir, tmp_path / "state", members=two_members())


@pytest.fixture
def app_and_state(sandbox_config: SandboxConfig) -> Iterator[tuple[Any, SandboxState]]:
    app = create_app(sandbox_config)
    state = sandbox_state(app)
    yield app, state
    state.close()


@pytest.fixture
def state(app_and_state: tuple[Any, SandboxState]) -> SandboxState:
    return app_and_state[1]


@pytest.fixture
async def http(app_and_state: tuple[Any, SandboxState]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_and_state[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://mkk.test") as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient, keys_dir: Path) -> MkkClient:
    return MkkClient(http, keys_dir / "members" / "TIB" / "key.pem", keys_dir / "mkk" / "cert.pem")


@pytest.fixture
def other_client(http: httpx.AsyncClient, keys_dir: Path) -> MkkClient:
    c = MkkClient(http, keys_dir / "members" / "ABC" / "key.pem", keys_dir / "mkk" / "cert.pem")
    c.member, c.user, c.password = "ABC", "ABC991", "Abc991!x"
    return c
