"""A small durable key-value store for the report pipeline's own state.

The idempotency store (idempotency.py) answers "was this effect done?"; some state is
richer than that and moves through several steps: a request's senderReference and
its phase (reserved / reusable / done, §3.2.2), the auth attempt counter per password
(FAQ 15), a poll's next attempt, a fetch's published completion. Each is one JSON
document per (scope, key), written before the step it guards.

SQLite (embedded) and PostgreSQL (shared by replicas) implement the same interface
and run the same tests (tests/integration/test_report_state_store.py).
"""

from __future__ import annotations

import abc
from typing import Any

from services.common.settings import StoreSettings
from services.common.stores.base import Store

TABLE = "kopru_state"


class StateStore(Store):
    @abc.abstractmethod
    async def get(self, scope: str, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def put(self, scope: str, key: str, value: dict[str, Any]) -> None:
        """Insert or replace, durable when it returns."""

    @abc.abstractmethod
    async def insert(self, scope: str, key: str, value: dict[str, Any]) -> bool:
        """Insert only if absent; True when this call inserted it."""

    @abc.abstractmethod
    async def delete(self, scope: str, key: str) -> None: ...


class MemoryStateStore(StateStore):
    """For unit tests of the handlers."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        super().__init__(settings or StoreSettings())
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get(self, scope: str, key: str) -> dict[str, Any] | None:
        v = self.data.get((scope, key))
        return dict(v) if v is not None else None

    async def put(self, scope: str, key: str, value: dict[str, Any]) -> None:
        self.data[(scope, key)] = dict(value)

    async def insert(self, scope: str, key: str, value: dict[str, Any]) -> bool:
        if (scope, key) in self.data:
            return False
        self.data[(scope, key)] = dict(value)
        return True

    async def delete(self, scope: str, key: str) -> None:
        self.data.pop((scope, key), None)
