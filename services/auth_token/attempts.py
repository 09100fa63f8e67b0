"""Durable record of password attempts per (member, sender) (FAQ 15).

Three wrong passwords lock the MKK user. kopru makes at most one attempt with a
password MKK refused: the refusal is stored with an HMAC fingerprint of that password
(never the password), and no attempt follows until the password secret changes (a new
fingerprint) or an operator runs `kopru auth reset`. An attempt is counted BEFORE it
is sent, so a crash loop cannot burn the tries: after `max_unconfirmed` attempts
with no known outcome for the same password, kopru stops as if it had been refused.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from services.common.stores.state import StateStore

SCOPE = "auth-attempts"


def password_fingerprint(key: str, password: str) -> str:
    return hmac.new(key.encode(), b"mkk-password:" + password.encode(), hashlib.sha256).hexdigest()


@dataclass
class AttemptState:
    blocked_fp: str | None = None  # the fingerprint of a refused password
    blocked_code: str | None = None
    pending_fp: str | None = None  # attempts sent with this password, outcome unknown
    unconfirmed: int = 0

    def is_blocked(self, fp: str, max_unconfirmed: int) -> bool:
        if self.blocked_fp is not None and self.blocked_fp == fp:
            return True
        return self.pending_fp == fp and self.unconfirmed >= max_unconfirmed

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AttemptLog:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    @staticmethod
    def key(member: str, sender: str) -> str:
        return f"{member}:{sender}"

    async def get(self, member: str, sender: str) -> AttemptState:
        raw = await self.store.get(SCOPE, self.key(member, sender))
        return AttemptState(**raw) if raw else AttemptState()

    async def put(self, member: str, sender: str, st: AttemptState) -> None:
        await self.store.put(SCOPE, self.key(member, sender), st.to_json())

    async def before_attempt(self, member: str, sender: str, fp: str) -> AttemptState:
        st = await self.get(member, sender)
        if st.blocked_fp is not None and st.blocked_fp != fp:
            st.blocked_fp = st.blocked_code = None  # the secret changed: one new try
        st.unconfirmed = st.unconfirmed + 1 if st.pending_fp == fp else 1
        st.pending_fp = fp
        await self.put(member, sender, st)
        return st

    async def succeeded(self, member: str, sender: str) -> None:
        await self.put(member, sender, AttemptState())

    async def not_checked(self, member: str, sender: str) -> None:
        """The answer proves the password was not checked (gateway error, no messageId)."""
        st = await self.get(member, sender)
        st.unconfirmed = max(0, st.unconfirmed - 1)
        await self.put(member, sender, st)

    async def refused(self, member: str, sender: str, fp: str, code: str) -> None:
        await self.put(member, sender, AttemptState(blocked_fp=fp, blocked_code=code))

    async def reset(self, member: str, sender: str) -> None:
        await self.store.delete(SCOPE, self.key(member, sender))
