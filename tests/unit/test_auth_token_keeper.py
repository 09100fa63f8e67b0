"""The auth-token decisions with a fake /v1/auth: one attempt with a refused password
(FAQ 15), a new try only when the secret changes or after a reset, the crash-loop
guard, the encrypted token, renewal at 50 of 60 minutes, the 365-day warning."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.events import TokenIssued, TokenUnavailable
from schemas.mkk import AuthRequest
from services.auth_token.attempts import AttemptLog
from services.auth_token.keeper import Keeper
from services.common.errors import RetryLater
from services.common.mkk.client import AuthResult
from services.common.mkk.outcome import MkkNotSent, MkkOutcome, MkkTransportError
from services.common.mkk.settings import MkkCredentials
from services.common.mkk.token_cache import TokenCache
from services.common.mkk.token_crypto import TokenCipher
from services.common.settings import KafkaSettings
from services.common.stores.state import MemoryStateStore


def _jwt(exp: int, reason: str = "") -> str:
    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    claims = {"exp": exp, "jti": f"jti-{exp}", "claim": {"auth": "OK", "reason": reason}}
    return f"{b64({'alg': 'RS256'})}.{b64(claims)}.c2ln"


class FakeMkk:
    def __init__(self, password: str) -> None:
        self.password = password
        self.calls: list[str] = []
        self.fail_transport = 0
        self.unreachable = 0

    async def auth(self, req: AuthRequest) -> AuthResult:
        if self.unreachable:  # connection refused: nothing reaches MKK
            self.unreachable -= 1
            raise MkkNotSent("auth: ConnectError")
        self.calls.append(req.request_header.sender_reference)
        if self.fail_transport:
            self.fail_transport -= 1
            raise MkkTransportError("cut")
        if req.password.get_secret_value() != self.password:
            return AuthResult(MkkOutcome.from_code("0x00d30003", 401))
        exp = int(datetime.now(UTC).timestamp()) + 3600
        return AuthResult(
            MkkOutcome.from_code("0000", 200), _jwt(exp, "TIB991 için tanımlı ip adresi bulunamadi")
        )


def _keeper(tmp: Path, mkk: FakeMkk, store: MemoryStateStore, published: list[Any]) -> Keeper:
    cipher = TokenCipher("token-key")
    cache = TokenCache(KafkaSettings(), cipher, None, requested_by="auth-token")

    async def publish(spec: Any, event: Any) -> None:
        published.append(event)

    return Keeper(
        creds=MkkCredentials(
            password_file=tmp / "pw", password_set_on=date.today() - timedelta(days=350)
        ),
        auth=mkk.auth, attempts=AttemptLog(store), cache=cache, cipher=cipher,
        fingerprint_key="token-key", publish=publish,
    )  # fmt: skip


async def test_wrong_password_is_tried_once_until_the_secret_changes(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("Wrong99!")
    mkk, store, published = FakeMkk("Demo991!"), MemoryStateStore(), []
    k = _keeper(tmp_path, mkk, store, published)
    assert await k.ensure("missing") == "blocked"
    for _ in range(5):
        assert await k.ensure("missing") == "blocked"
    # A restarted service (new keeper, same durable store) does not try either.
    k2 = _keeper(tmp_path, mkk, store, published)
    assert await k2.ensure("missing") == "blocked"
    assert len(mkk.calls) == 1
    unavailable = [e for e in published if isinstance(e, TokenUnavailable)]
    assert unavailable and all(e.retry_blocked for e in unavailable)
    assert unavailable[0].code == "0x00d30003"
    # The secret is corrected: one new attempt, a token.
    (tmp_path / "pw").write_text("Demo991!")
    assert await k2.ensure("missing") == "issued"
    assert len(mkk.calls) == 2


async def test_reset_allows_one_more_try(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("Wrong99!")
    mkk, store, published = FakeMkk("Demo991!"), MemoryStateStore(), []
    k = _keeper(tmp_path, mkk, store, published)
    await k.ensure("missing")
    await AttemptLog(store).reset("TIB", "TIB991")
    await k.ensure("missing")
    assert len(mkk.calls) == 2


async def test_crash_loop_cannot_burn_three_tries(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("Wrong99!")
    mkk, store, published = FakeMkk("Demo991!"), MemoryStateStore(), []
    mkk.fail_transport = 10  # every answer lost, as if the process died mid-call
    for _ in range(5):
        k = _keeper(tmp_path, mkk, store, published)
        with contextlib.suppress(RetryLater):
            await k.ensure("missing")
    assert len(mkk.calls) == 2  # below MKK's three


async def test_mkk_unreachable_at_start_never_counts_as_a_try(tmp_path: Path) -> None:
    """MKK (or the network to it) down when auth-token starts: connections refused many
    times over. No password was checked, so nothing counts toward FAQ 15's three tries
    and the token comes as soon as MKK answers (the chaos run: blocked with
    KOPRU_AUTH_UNCONFIRMED after two refused connections, every report waiting)."""
    (tmp_path / "pw").write_text("Demo991!")
    mkk, store, published = FakeMkk("Demo991!"), MemoryStateStore(), []
    mkk.unreachable = 5
    k = _keeper(tmp_path, mkk, store, published)
    for _ in range(5):
        with pytest.raises(RetryLater):
            await k.ensure("missing")
    assert await k.ensure("missing") == "issued"
    assert len(mkk.calls) == 1


async def test_token_is_published_encrypted_and_renewed_at_50_minutes(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("Demo991!")
    mkk, store, published = FakeMkk("Demo991!"), MemoryStateStore(), []
    k = _keeper(tmp_path, mkk, store, published)
    assert await k.ensure("missing") == "issued"
    assert await k.ensure("missing") == "live"  # one token per life
    [issued] = published
    assert isinstance(issued, TokenIssued)
    assert "eyJ" not in issued.model_dump_json()  # never in clear on Kafka
    token = TokenCipher("token-key").decrypt(
        issued.key_id, issued.nonce_b64, issued.ciphertext_b64, "TIB", "TIB991", issued.jti
    )
    assert token.count(".") == 2
    assert not k.renewal_due(issued.issued_at + timedelta(minutes=49))
    assert k.renewal_due(issued.issued_at + timedelta(minutes=50, seconds=1))
    # A token MKK rejected is replaced even though it is not expired.
    assert await k.ensure("rejected", rejected_jti=issued.jti) == "issued"
    assert len(mkk.calls) == 2


def test_password_age_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    k = _keeper(tmp_path, FakeMkk("x"), MemoryStateStore(), [])
    assert k.warn_password_age(date.today()) == 15


async def test_a_missing_token_is_published_again_without_a_new_auth(tmp_path: Path) -> None:
    """After a broker restart the token topic is empty while auth-token still holds a
    live token: a service that asks because it found none gets the same token again,
    and MKK sees no second /v1/auth (one token per life)."""
    (tmp_path / "pw").write_text("Demo991!")
    mkk, store, published = FakeMkk("Demo991!"), MemoryStateStore(), []
    k = _keeper(tmp_path, mkk, store, published)
    assert await k.ensure("missing") == "issued"
    assert await k.ensure("missing") == "live"  # just published: nobody can miss it yet
    k.republish_every_s = 0.0
    assert await k.ensure("expired") == "live"  # not due: "expired" is no reason to resend
    assert await k.ensure("missing") == "republished"
    assert len(mkk.calls) == 1
    first, again = published
    assert isinstance(again, TokenIssued)
    assert (again.jti, again.expires_at) == (first.jti, first.expires_at)
    assert again.nonce_b64 != first.nonce_b64  # encrypted afresh, never a reused nonce
