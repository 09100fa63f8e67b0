"""Kafka for every service: broker wiring and clients, delivery (commit after effect,
retry tiers with pause-until-due, dead letters), headers, topic admin, consumer lag,
DLQ tools and the local brokers."""
