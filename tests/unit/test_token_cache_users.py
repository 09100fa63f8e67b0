"""The report services' token cache with several MKK users: a TokenUnavailable saying
auth-token has no such user ends the wait at once with UnknownMkkUserError, while the
other users' tokens and a password refusal behave as before (retry later)."""

from __future__ import annotations

import pytest

from schemas.events import TokenRequested, TokenUnavailable
from services.common.mkk.token_cache import (
    UNKNOWN_USER,
    TokenCache,
    TokenUnavailableError,
    UnknownMkkUserError,
)
from services.common.mkk.token_crypto import TokenCipher
from services.common.settings import KafkaSettings


async def test_unknown_user_fails_at_once_a_refused_password_waits() -> None:
    asked: list[TokenRequested] = []

    async def request(ev: TokenRequested) -> None:
        asked.append(ev)

    cache = TokenCache(KafkaSettings(), TokenCipher("k"), request, requested_by="t", wait_s=30)
    cache.apply(
        TokenUnavailable(member="TIB", sender="TIB993", code=UNKNOWN_USER,
                         description="no such user", retry_blocked=True)
    )  # fmt: skip
    cache.apply(
        TokenUnavailable(member="TIB", sender="TIB992", code="0x00d30003",
                         description="wrong password", retry_blocked=True)
    )  # fmt: skip
    with pytest.raises(UnknownMkkUserError):
        await cache.get("TIB", "TIB993")
    with pytest.raises(TokenUnavailableError) as refused:
        await cache.get("TIB", "TIB992")
    assert not isinstance(refused.value, UnknownMkkUserError)
    assert {(a.member, a.sender) for a in asked} == {("TIB", "TIB993"), ("TIB", "TIB992")}
