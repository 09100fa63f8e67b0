"""Kafka for every service: broker wiring and clients, delivery (commit after effect,
retry tiers with pause-until-due, dead letters), headers, topic admin, consumer lag,
DLQ tools and the local brokers."""

from services.common.kafka.no_auto_create import install as _no_auto_create

_no_auto_create()  # before any client exists: no client of kopru creates a topic
