"""Where a store's implementation is chosen: one place, from the URL's scheme.

The interfaces (`idempotency`, `state`, `payments`) never import their SQLite or
PostgreSQL implementations, and the implementations import only their interface:
no import cycle. `sqlite:///path` is the embedded default; `postgresql://…` is
shared by several replicas. Only the chosen implementation is imported: a service on
SQLite never loads asyncpg, one on PostgreSQL never loads aiosqlite.
"""

from __future__ import annotations

from services.common.settings import StoreSettings
from services.common.stores.idempotency import IdempotencyStore
from services.common.stores.payments import PaymentStore
from services.common.stores.state import StateStore


def is_sqlite(settings: StoreSettings) -> bool:
    return settings.url.startswith("sqlite:///")


def open_store(settings: StoreSettings) -> IdempotencyStore:
    """The idempotency store named by settings.url (sqlite:///path or postgresql://...)."""
    if is_sqlite(settings):
        from services.common.stores.idempotency_sqlite import SqliteIdempotencyStore

        return SqliteIdempotencyStore(settings)
    from services.common.stores.idempotency_postgres import PostgresIdempotencyStore

    return PostgresIdempotencyStore(settings)


def open_state_store(settings: StoreSettings) -> StateStore:
    """The state store named by settings.url."""
    if is_sqlite(settings):
        from services.common.stores.state_sqlite import SqliteStateStore

        return SqliteStateStore(settings)
    from services.common.stores.state_postgres import PostgresStateStore

    return PostgresStateStore(settings)


def open_payment_store(settings: StoreSettings) -> PaymentStore:
    """The payment store named by settings.url."""
    if is_sqlite(settings):
        from services.common.stores.payments_sqlite import SqlitePaymentStore

        return SqlitePaymentStore(settings)
    from services.common.stores.payments_postgres import PostgresPaymentStore

    return PostgresPaymentStore(settings)
