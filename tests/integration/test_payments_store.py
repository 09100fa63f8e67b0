"""The BKM payment store on SQLite and PostgreSQL: one winner per token, forward-only
states, replay and conflict, the outbox lease and the reconciliation schedule."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from services.common.settings import StoreSettings
from services.common.stores.factory import open_payment_store
from services.common.stores.payments import (
    CONFIRMED,
    FAILED,
    INITIALIZED,
    ORDER_ID_MARK,
    Decision,
    Outcome,
    PaymentStore,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def pstore(store_settings: StoreSettings) -> AsyncIterator[PaymentStore]:
    s = open_payment_store(store_settings)
    await s.open()
    yield s
    await s.close()


def tok() -> str:
    return uuid.uuid4().hex


def outcome(
    token: str, state: str = CONFIRMED, fp: str = "fp1", source: str = "confirmation"
) -> Outcome:
    answer = json.dumps({"token": token, "status": state})
    return Outcome(token, state, fp, answer, '{"e":1}', source)


async def test_first_outcome_wins_and_replay_gets_its_answer(pstore: PaymentStore) -> None:
    t = tok()
    first = await pstore.record_outcome(outcome(t), "owner-a", 30)
    again = await pstore.record_outcome(outcome(t), "owner-b", 30)
    assert first.decision is Decision.RECORDED
    assert again.decision is Decision.REPLAY
    assert again.row.answer == json.dumps({"token": t, "status": CONFIRMED})  # the same text
    assert again.row.owner == "owner-a"


async def test_other_content_under_a_known_token_is_a_conflict(pstore: PaymentStore) -> None:
    t = tok()
    await pstore.record_outcome(outcome(t), "a", 30)
    altered = await pstore.record_outcome(outcome(t, fp="fp-other-amount"), "b", 30)
    late_failure = await pstore.record_outcome(outcome(t, FAILED, fp="fp-cancel"), "c", 30)
    assert altered.decision is Decision.CONFLICT
    assert late_failure.decision is Decision.CONFLICT
    row = await pstore.get(t)
    assert row is not None and row.state == CONFIRMED and row.fingerprint == "fp1"


async def test_concurrent_records_have_exactly_one_winner(pstore: PaymentStore) -> None:
    t = tok()
    results = await asyncio.gather(
        *(pstore.record_outcome(outcome(t), f"o{i}", 30) for i in range(20))
    )
    decisions = [r.decision for r in results]
    assert decisions.count(Decision.RECORDED) == 1
    assert decisions.count(Decision.REPLAY) == 19


async def test_concurrent_records_on_an_initialized_payment_have_one_winner(
    pstore: PaymentStore,
) -> None:
    t = tok()
    await pstore.record_initialized(t, "order-c", due_at=time.time() + 60)
    # Warm the pool up so the statements really start together (PostgreSQL).
    await asyncio.gather(*(pstore.get(tok()) for _ in range(20)))
    results = await asyncio.gather(
        *(pstore.record_outcome(outcome(t), f"o{i}", 30) for i in range(20))
    )
    decisions = [r.decision for r in results]
    assert decisions.count(Decision.RECORDED) == 1
    assert decisions.count(Decision.REPLAY) == 19
    assert all(r.row.state == CONFIRMED and r.row.order_id == "order-c" for r in results)


async def test_initialized_moves_forward_and_never_back(pstore: PaymentStore) -> None:
    t = tok()
    await pstore.record_initialized(t, "order-1", due_at=time.time() + 60)
    row = await pstore.get(t)
    assert row is not None and row.state == INITIALIZED and row.order_id == "order-1"
    rec = await pstore.record_outcome(outcome(t), "a", 30)
    assert rec.decision is Decision.RECORDED
    assert rec.row.order_id == "order-1"
    await pstore.record_initialized(t, "order-1", due_at=time.time())  # redelivered init
    row = await pstore.get(t)
    assert row is not None and row.state == CONFIRMED


async def test_publish_marks_and_expired_lease_is_taken_over(pstore: PaymentStore) -> None:
    done, crashed = tok(), tok()
    await pstore.record_outcome(outcome(done), "a", 30)
    assert await pstore.mark_published(done, "a")
    assert not await pstore.mark_published(done, "a")  # only once
    await pstore.record_outcome(outcome(crashed), "dead", 0.05)
    await asyncio.sleep(0.1)
    taken = [r for r in await pstore.take_unpublished("relay", 30) if r.token == crashed]
    assert len(taken) == 1 and taken[0].event == '{"e":1}'
    assert [r for r in await pstore.take_unpublished("other", 30) if r.token == crashed] == []
    assert not await pstore.mark_published(crashed, "dead")  # its lease is gone
    assert await pstore.mark_published(crashed, "relay")


async def test_a_renewed_lease_is_not_taken_over(pstore: PaymentStore) -> None:
    slow = tok()
    await pstore.record_outcome(outcome(slow), "relay-a", 0.2)
    for _ in range(3):  # three lease lengths, renewed each time before it runs out
        await asyncio.sleep(0.1)
        assert await pstore.renew_leases("relay-a", 0.2) == 1
        assert [r for r in await pstore.take_unpublished("relay-b", 30) if r.token == slow] == []
    assert await pstore.mark_published(slow, "relay-a")
    assert await pstore.renew_leases("relay-a", 0.2) == 0  # published rows are no one's


async def test_a_relay_holds_the_rows_recorded_under_its_lease(pstore: PaymentStore) -> None:
    """Rows recorded as "<relay>/<call>" are the relay's: it renews, releases and marks
    them by its own name; another owner, or a name that only starts like it, does not."""
    a, b, other = tok(), tok(), tok()
    assert (await pstore.record_outcome(outcome(a), "r1/c1", 30)).decision is Decision.RECORDED
    assert (await pstore.record_outcome(outcome(b), "r1/c2", 30)).decision is Decision.RECORDED
    await pstore.record_outcome(outcome(other), "r12/c3", 30)
    assert await pstore.renew_leases("r1", 30) == 2
    assert await pstore.mark_published_many([a, other], "r1") == 1  # not r12's row
    assert await pstore.renew_leases("r1", 0.0) == 1  # released: b is anyone's now
    await asyncio.sleep(0.01)
    taken = {r.token for r in await pstore.take_unpublished("r2", 30)}
    assert b in taken and other not in taken
    assert await pstore.mark_published_many([b], "r1") == 0  # r2's now
    assert await pstore.mark_published_many([b], "r2") == 1


async def test_due_reconciliations_are_taken_once_and_rescheduled(pstore: PaymentStore) -> None:
    due, later = tok(), tok()
    await pstore.record_initialized(due, "o-due", due_at=time.time() - 1)
    await pstore.record_initialized(later, "o-later", due_at=time.time() + 3600)
    first = {r.token for r in await pstore.take_due(recheck_s=60)}
    second = {r.token for r in await pstore.take_due(recheck_s=60)}
    assert due in first and later not in first
    assert due not in second


async def test_purge_removes_only_old_published_outcomes(pstore: PaymentStore) -> None:
    published, pending = tok(), tok()
    await pstore.record_outcome(outcome(published), "a", 30)
    await pstore.mark_published(published, "a")
    await pstore.record_outcome(outcome(pending), "a", 30)
    await asyncio.sleep(0.05)
    assert await pstore.purge(older_than_s=0.01) >= 1
    assert await pstore.get(published) is None
    assert await pstore.get(pending) is not None


async def test_a_failure_to_recheck_becomes_due_once_and_can_be_cleared(
    pstore: PaymentStore,
) -> None:
    t = tok()
    failed = Outcome(t, FAILED, "fp-c", '{"status":"failed"}', "{}", "cancel_redirect", time.time())
    assert (await pstore.record_outcome(failed, "a", 30)).decision is Decision.RECORDED
    assert t in {r.token for r in await pstore.take_due(recheck_s=60)}
    assert t not in {r.token for r in await pstore.take_due(recheck_s=60)}
    await pstore.clear_due(t)
    row = await pstore.get(t)
    assert row is not None and row.state == FAILED


async def test_outbox_backlog_counts_recorded_outcomes_until_published(
    pstore: PaymentStore,
) -> None:
    from services.payment_notifier.outbox_metrics import observe_outbox

    before, _ = await pstore.outbox_backlog()
    a, b, init = tok(), tok(), tok()
    await pstore.record_outcome(outcome(a), "o", 30)
    await pstore.record_outcome(outcome(b), "o", 30)
    await pstore.record_initialized(init, "order-x", due_at=time.time())  # not an outcome
    count, oldest = await pstore.outbox_backlog()
    assert count == before + 2
    assert oldest is not None and oldest <= time.time()
    assert await pstore.mark_published(a, "o")
    assert (await pstore.outbox_backlog())[0] == before + 1
    assert await pstore.mark_published(b, "o")
    n, age = await observe_outbox(pstore)
    assert n == before
    assert before > 0 or age == 0.0


async def test_two_replicas_batching_the_same_tokens_in_opposite_orders(
    pstore: PaymentStore, store_settings: StoreSettings
) -> None:
    """Concurrent calls of one process share a statement (PostgreSQL, group commit); two
    replicas' batches over the same tokens never deadlock, and each token has one winner.
    An initialized payment's order id is written into the winner's answer and event."""
    other = open_payment_store(store_settings)
    await other.open()
    try:
        tokens = [tok() for _ in range(40)]
        for t in tokens[::2]:
            await pstore.record_initialized(t, f"order-{t[:6]}", due_at=time.time() + 60)

        def marked(t: str) -> Outcome:
            answer = json.dumps({"token": t, "order_id": ORDER_ID_MARK})
            event = json.dumps({"event": t, "order_id": ORDER_ID_MARK})
            return Outcome(t, CONFIRMED, "fp1", answer, event, "confirmation")

        for _ in range(3):  # a few rounds: the batches meet in different ways
            round_tokens = [tok() for _ in range(30)]
            results = await asyncio.gather(
                *(pstore.record_outcome(marked(t), f"a-{t}", 30) for t in round_tokens),
                *(other.record_outcome(marked(t), f"b-{t}", 30) for t in reversed(round_tokens)),
            )
            for t in round_tokens:
                mine = [r for r in results if r.row.token == t]
                assert sorted(r.decision.value for r in mine) == ["recorded", "replay"]
        results = await asyncio.gather(
            *(pstore.record_outcome(marked(t), f"a-{t}", 30) for t in tokens),
            *(other.record_outcome(marked(t), f"b-{t}", 30) for t in reversed(tokens)),
        )
        for t in tokens:
            mine = [r for r in results if r.row.token == t]
            assert sorted(r.decision.value for r in mine) == ["recorded", "replay"]
            row = mine[0].row
            order = f'"order-{t[:6]}"' if t in tokens[::2] else "null"
            assert row.answer == json.dumps({"token": t, "order_id": None}).replace("null", order)
            assert row.event is not None and row.event.endswith(f'"order_id": {order}}}')
    finally:
        await other.close()


async def test_postgres_keeps_partial_indexes_and_drops_the_old_ones(postgres_url: str) -> None:
    """A database made by an older version (full indexes on due_at and on (published,
    lease_expires)) gets the partial ones at open: a published confirmation's row is in
    neither, so its insert and its publish write fewer index entries."""
    import asyncpg

    from services.common.stores.payments import TABLE

    first = open_payment_store(StoreSettings(url=postgres_url))
    await first.open()
    await first.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_due_at ON {TABLE} (due_at)")
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_outbox ON {TABLE} (published, lease_expires)"
        )
        again = open_payment_store(StoreSettings(url=postgres_url))
        await again.open()
        await again.close()
        rows = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1", TABLE
        )
    finally:
        await conn.close()
    defs = {r["indexname"]: r["indexdef"] for r in rows}
    assert set(defs) == {f"{TABLE}_pkey", f"{TABLE}_due", f"{TABLE}_unpublished"}, defs
    assert defs[f"{TABLE}_due"].endswith("WHERE (due_at IS NOT NULL)")
    assert defs[f"{TABLE}_unpublished"].endswith("WHERE (NOT published)")
