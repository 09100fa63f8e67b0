"""Moka dealer API: CheckKey authentication and the client."""
