"""Signing: JWS with pinned algorithms, the signing worker pool and its settings, and
§3.1 certificates."""
