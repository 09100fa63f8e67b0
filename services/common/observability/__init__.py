"""Observability: JSON logging with correlation ids, redaction of secrets, Prometheus
metrics and the health endpoints."""
