"""Durable state: the SQLite / PostgreSQL adapters, the store base, and each store
(idempotency, report state, payments, outcomes). `factory` chooses an implementation
from the URL; the interfaces never import their implementations."""
