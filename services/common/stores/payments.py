"""The BKM payment store: one row per payment token, states that only move forward.

    (none) ──initializePayment──▶ initialized ──confirmation / redirect / query──▶ confirmed
                                             └──────────────────────────────────▶ failed

Exactly-once publish (ARCHITECTURE "Webhooks": store first and answer fast, then process):
- ``record_outcome`` writes the outcome AND the event to publish (an outbox row, with a
  deterministic event_id = uuid5(token)) in one statement decided by the database
  (INSERT ... ON CONFLICT (token) DO UPDATE ... WHERE state = 'initialized'). Only one
  caller wins per token, across processes and replicas; the others read the winner's row
  and get its answer (same content) or a conflict (other content);
- the winner holds the row's lease (owner, lease_expires: the "in progress" state with its
  own expiry); its process's outbox relay publishes it, then ``mark_published`` (the
  "completed" state);
- a crash after recording and before marking leaves an unpublished row whose lease
  expires; the relay (``take_unpublished``) of any replica takes it over and publishes the
  stored event. A crash between publish and mark therefore may publish the same event
  twice; both copies carry the same event_id, which downstream dedupes on (schemas/events/base.py).
  Without crashes every outcome is published exactly once.

SQLite (embedded default) and PostgreSQL (shared by replicas) implement the same
interface and pass the same tests.
"""

from __future__ import annotations

import abc
import enum
import time
from dataclasses import dataclass
from typing import Any

from services.common.stores.base import Store

TABLE = "kopru_bkm_payments"

INITIALIZED, CONFIRMED, FAILED = "initialized", "confirmed", "failed"

# An outcome's answer and event may carry this (a JSON string, quotes included) in place of
# the payment's order id: ``record_outcome`` writes the order id the store knows from
# ``record_initialized`` there (or null), in the same statement. A confirmation is then
# recorded in one round trip, without reading the row first. Order ids are
# [A-Za-z0-9._:-] (schemas/events/payments.py): their JSON is '"' + id + '"' everywhere.
ORDER_ID_MARK = "kopru.order-id.from-the-store"
ORDER_ID_JSON_MARK = '"' + ORDER_ID_MARK + '"'
FINAL_STATES = frozenset({CONFIRMED, FAILED})


class Decision(enum.Enum):
    RECORDED = "recorded"  # yours: publish the event, then mark_published
    REPLAY = "replay"  # the same outcome was recorded before: answer its answer
    CONFLICT = "conflict"  # another outcome (or other content) holds the token


@dataclass(frozen=True)
class PaymentRow:
    token: str
    order_id: str | None
    state: str
    fingerprint: str | None
    answer: str | None  # the first HTTP answer's exact body (UTF-8 JSON text)
    event: str | None
    published: bool
    owner: str | None
    source: str | None
    initialized_at: float | None
    updated_at: float


@dataclass(frozen=True)
class Outcome:
    """What to record for a token: final state, content fingerprint, answer, event JSON."""

    token: str
    state: str  # confirmed | failed
    fingerprint: str
    answer: str  # the exact body answered, stored as is: replays send the same bytes
    event: str
    source: str
    # When to ask QueryPaymentResult whether it agrees (a failure seen only through the
    # user's cancel redirect); None: never.
    recheck_at: float | None = None


@dataclass(frozen=True)
class Recorded:
    decision: Decision
    row: PaymentRow


COLUMNS = (
    "token, order_id, state, fingerprint, answer, event, published, owner, source, "
    "initialized_at, updated_at"
)


def row_from(values: Any) -> PaymentRow:
    return PaymentRow(
        token=values[0],
        order_id=values[1],
        state=values[2],
        fingerprint=values[3],
        answer=values[4],
        event=values[5],
        published=bool(values[6]),
        owner=values[7],
        source=values[8],
        initialized_at=values[9],
        updated_at=values[10],
    )


def decide(row: PaymentRow, outcome: Outcome, owner: str) -> Decision:
    """Who won the token, from the row the database kept."""
    if row.owner == owner and row.fingerprint == outcome.fingerprint:
        return Decision.RECORDED
    if row.fingerprint == outcome.fingerprint:
        return Decision.REPLAY
    # The query is the authority (BKM "İşlem Bilgileri Sorgulama"): a callback arriving
    # after reconciliation that agrees on the result is a replay of that result.
    if row.source == "reconciliation" and row.state == outcome.state:
        return Decision.REPLAY
    return Decision.CONFLICT


class PaymentStore(Store):
    @abc.abstractmethod
    async def record_initialized(self, token: str, order_id: str, due_at: float) -> None:
        """Remember an initialized payment (for reconciliation); never moves a row back."""

    @abc.abstractmethod
    async def record_outcome(self, outcome: Outcome, owner: str, lease_s: float) -> Recorded:
        """Record the final outcome once per token; the database decides the winner."""

    @abc.abstractmethod
    async def mark_published_many(self, tokens: list[str], owner: str) -> int:
        """These outbox rows were published (one statement); how many were still ours.
        ``owner`` holds the rows recorded or taken under its name or under
        ``<owner>/<call>`` (a relay's handed rows, outbox_relay.py)."""

    async def mark_published(self, token: str, owner: str) -> bool:
        """The outbox row was published; False if the lease was taken over meanwhile."""
        return await self.mark_published_many([token], owner) == 1

    @abc.abstractmethod
    async def renew_leases(self, owner: str, lease_s: float) -> int:
        """Push the lease of this owner's unpublished rows (as in ``mark_published_many``)
        ``lease_s`` on (a publish that waits out a leader election or a cluster outage
        keeps its rows; 0 releases them to the other relays at once); how many."""

    @abc.abstractmethod
    async def take_unpublished(
        self, owner: str, lease_s: float, limit: int = 100
    ) -> list[PaymentRow]:
        """Lease outcomes whose publisher's lease expired (crashed): the relay's work."""

    @abc.abstractmethod
    async def take_due(self, recheck_s: float, limit: int = 100) -> list[PaymentRow]:
        """Payments due for a QueryPaymentResult (initialized ones, and failures to
        double-check); each is pushed ``recheck_s`` later in the same statement, so
        replicas never take the same one twice at once."""

    @abc.abstractmethod
    async def clear_due(self, token: str) -> None:
        """No more queries for this payment."""

    @abc.abstractmethod
    async def get(self, token: str) -> PaymentRow | None: ...

    @abc.abstractmethod
    async def outbox_backlog(self) -> tuple[int, float | None]:
        """Recorded outcomes not yet published: how many, and the oldest's updated_at."""

    @abc.abstractmethod
    async def purge(self, older_than_s: float | None = None) -> int:
        """Delete published outcomes older than the retention; return how many."""

    def _age(self, older_than_s: float | None) -> float:
        age = older_than_s if older_than_s is not None else self.settings.retention_days * 86400
        return time.time() - age
