"""The outbox's backlog as metrics, read from the payment store on each relay pass."""

from __future__ import annotations

import time

from services.common.observability.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST
from services.common.stores.payments import PaymentStore


async def observe_outbox(store: PaymentStore) -> tuple[int, float]:
    """Set kopru_payments_outbox_backlog / _oldest_seconds; return (count, oldest age)."""
    count, oldest = await store.outbox_backlog()
    age = 0.0 if oldest is None else max(0.0, time.time() - oldest)
    OUTBOX_BACKLOG.set(count)
    OUTBOX_OLDEST.set(age)
    return count, age
