"""The outbox relay: publishes recorded BKM outcomes off the request path, in batches.

A confirmation's answer waits only for its outcome and event to be durable in the store
(one row: the outbox). The handler records the row under this relay's lease (owner
``<relay>/<call>``, ``lease_s``) and hands it over; the relay publishes the handed rows
on its next pass, with no statement to take them. Every replica's relay also takes, every
``interval_s``, rows whose lease expired (a crashed replica's, a failed publish's):
``take_unpublished`` leases them in one statement, FOR UPDATE SKIP LOCKED on PostgreSQL.
A pass hands all its events to the producer (it batches them per partition), awaits the
cluster's acknowledgements together, and marks the acknowledged rows in one statement.
While its publishes wait (a leader election, a cluster outage), the relay renews its
leases every third of ``lease_s`` (the rows handed over and not yet published too), so no
other relay takes them over and publishes them a second time. A row whose publish failed
keeps its lease until it expires and is taken again; only a crash between publish and
mark publishes the same event (same event_id) again, which downstream dedupes on. A relay
that stops releases its leases, so the other replicas publish what it still held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from schemas.events import BKM_CONFIRMATIONS, Event
from services.common.observability.logging import get_logger
from services.common.stores.idempotency import new_owner
from services.common.stores.payments import PaymentRow, PaymentStore
from services.payment_notifier import metrics
from services.payment_notifier.outbox_metrics import observe_outbox

log = get_logger(__name__)
# Awaited with a pass's rows, every row's stored event is in the producer's batches; it
# returns per row the acknowledgement to await (outbox_producer.py), None once the publish
# is acknowledged, or the error that kept the row out.
Ack = Awaitable[Any] | Exception | None
Enqueue = Callable[[list[PaymentRow]], Awaitable[Sequence[Ack]]]


def publishing(publish: Callable[[Event], Awaitable[Awaitable[Any] | None]]) -> Enqueue:
    """An ``Enqueue`` over an event publisher (tests, tools): each stored event parsed and
    published in turn."""

    async def enqueue(rows: list[PaymentRow]) -> list[Ack]:
        acks: list[Ack] = []
        for row in rows:
            try:
                acks.append(await publish(BKM_CONFIRMATIONS.parse((row.event or "").encode())))
            except Exception as exc:
                acks.append(exc)
        return acks

    return enqueue


class OutboxRelay:
    def __init__(
        self,
        store: PaymentStore,
        publish: Enqueue,
        *,
        lease_s: float = 30.0,
        interval_s: float = 5.0,
        batch: int = 500,
        linger_s: float = 0.1,
    ) -> None:
        self.store = store
        self.publish = publish
        self.lease_s = lease_s
        self.interval_s = interval_s
        self.batch = batch
        # After a wake, wait this long for more outcomes: under load a pass publishes
        # a hundred rows instead of a few, with one statement (mark) per pass. Each
        # statement costs PostgreSQL about the same however few rows it has (bench
        # payments: 20 ms -> 100 ms took its CPU per confirmation from ~0.22 to ~0.13 ms).
        self.linger_s = linger_s
        self.owner = new_owner()  # the lease of the rows handed to this relay
        # Each call's id under it: unique within this relay, whose owner is unique (no
        # random bytes per confirmation).
        self._calls = itertools.count(1)
        self._handed: list[PaymentRow] = []
        self._wake = asyncio.Event()
        self._observed_at = float("-inf")
        self._taken_at = float("-inf")

    def lease_owner(self) -> str:
        """The owner to record an outcome under: this relay's lease, one call's own id
        (the store tells the call that recorded a token by it, stores.payments.decide)."""
        return f"{self.owner}/{next(self._calls)}"

    def hand_over(self, row: PaymentRow) -> None:
        """A row recorded under ``lease_owner()``: published on the next pass. While a pass
        waits (a cluster outage), at most ``5 × batch`` rows wait in memory; the others
        stay in the store only, and once the pass ends and their lease lapses, a take
        (this relay's or another's) publishes them."""
        if len(self._handed) < 5 * self.batch:
            self._handed.append(row)
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: drain when woken, or every ``interval_s``."""
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that meets a wake-up, and the relay would outlive its service's stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            if self._wake.is_set():
                await asyncio.sleep(self.linger_s)
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay pass failed", error=str(exc))
                await asyncio.sleep(min(1.0, self.interval_s))

    async def release(self) -> None:
        """At stop: the leases of the rows still handed to this relay end now, so another
        replica's relay takes them at once instead of after ``lease_s``."""
        self._handed.clear()
        try:
            await self.store.renew_leases(self.owner, 0.0)
        except Exception as exc:  # the store is away: the leases lapse by themselves
            log.warning("outbox lease release failed", error=str(exc))

    async def drain(self) -> int:
        """Publish what is due now: the rows handed over, and every ``interval_s`` the
        rows whose lease expired; the number of outcomes published and marked."""
        now = time.monotonic()
        if now - self._observed_at >= self.interval_s:  # the backlog metrics, not per wake
            self._observed_at = now
            await observe_outbox(self.store)
        total = 0
        while self._handed:
            rows, self._handed = self._handed[: self.batch], self._handed[self.batch :]
            total += (await self._pass(rows, self.owner))[0]
        if now - self._taken_at < self.interval_s:
            return total
        self._taken_at = now
        while True:
            owner = new_owner()  # this batch's lease
            rows = await self.store.take_unpublished(owner, self.lease_s, self.batch)
            if not rows:
                return total
            marked, done = await self._pass(rows, owner)
            total += marked
            if len(rows) < self.batch or done < len(rows):
                return total

    async def _pass(self, rows: list[PaymentRow], owner: str) -> tuple[int, int]:
        """Publish ``rows`` held under ``owner``'s lease and mark the acknowledged ones:
        (marked, acknowledged)."""
        renewing = asyncio.create_task(self._renew(owner), name="outbox-lease")
        try:
            sent = await self._publish_all(rows)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        done = [row.token for row, ok in zip(rows, sent, strict=True) if ok]
        marked = await self.store.mark_published_many(done, owner)
        if marked < len(done):
            log.warning("outcome leases were taken over before marking", lost=len(done) - marked)
        metrics.PUBLISHED.labels("relay").inc(marked)
        return marked, len(done)

    async def _renew(self, owner: str) -> None:
        """Keep the lease while the publishes are in flight (for this relay's own lease:
        the rows handed over meanwhile too)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.store.renew_leases(owner, self.lease_s)
            except Exception as exc:  # the store is away: the lease may lapse, as before
                log.warning("outbox lease renewal failed", error=str(exc))

    async def _publish_all(self, rows: list[PaymentRow]) -> list[bool]:
        """Hand every row's event to the producer at once (it builds the batches, with the
        loop free between slices: a large pass never holds the HTTP answers up for long),
        then await the acknowledgements together: which rows were published."""
        with_event = [i for i, row in enumerate(rows) if row.event is not None]
        try:
            acks = await self.publish([rows[i] for i in with_event])
        except Exception as exc:
            acks = [exc] * len(with_event)
        sent = [False] * len(rows)
        failed: list[tuple[int, BaseException]] = []
        waiting: list[tuple[int, Awaitable[Any]]] = []
        for i, ack in zip(with_event, acks, strict=True):
            if ack is None:
                sent[i] = True
            elif isinstance(ack, Exception):
                failed.append((i, ack))
            else:
                waiting.append((i, ack))
        # Rows of one batch share its acknowledgement: gather awaits each future once.
        results = await asyncio.gather(*(ack for _, ack in waiting), return_exceptions=True)
        for (i, _), result in zip(waiting, results, strict=True):
            if isinstance(result, BaseException):
                failed.append((i, result))
            else:
                sent[i] = True
        if failed:  # one line a pass, not one a row: an outage fails whole batches
            log.warning(
                "outcome publishes failed; retried later",
                failed=len(failed),
                of=len(rows),
                bkm_t=[rows[i].token for i, _ in failed[:5]],
                error=str(failed[0][1]) or type(failed[0][1]).__name__,
            )
        return sent
