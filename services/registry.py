"""The services kopru runs: name -> where its settings and its builder live.

Each service package has an `app.py` with a `Settings` class (a BaseServiceSettings
subclass composing the sections it needs) and `build(settings) -> Service`.
Entries are import paths, so `kopru run X` imports only what X needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from services.common.service import Service
from services.common.settings import BaseServiceSettings


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    module: str
    summary: str

    def settings_cls(self) -> type[BaseServiceSettings]:
        cls: type[BaseServiceSettings] = importlib.import_module(self.module).Settings
        return cls

    def checker(self) -> Callable[[BaseServiceSettings], None]:
        """The service's ``check(settings)`` (rules across sections that must hold to run,
        but not to describe the service from default settings: contracts), or a no-op."""
        check: Callable[[BaseServiceSettings], None] = getattr(
            importlib.import_module(self.module), "check", lambda settings: None
        )
        return check

    def builder(self) -> Callable[[BaseServiceSettings], Service]:
        build: Callable[[BaseServiceSettings], Service] = importlib.import_module(self.module).build
        return build


SERVICES: dict[str, ServiceEntry] = {
    e.name: e
    for e in (
        ServiceEntry(
            "auth-token",
            "services.auth_token.app",
            "Holds the MKK password; keeps one live token per (member, sender).",
        ),
        ServiceEntry(
            "report-requester",
            "services.report_requester.app",
            "Validates report requests and calls MKK balance-report once per request.",
        ),
        ServiceEntry(
            "status-poller",
            "services.status_poller.app",
            "Polls async-report-status with durable backoff until ready or 24 h.",
        ),
        ServiceEntry(
            "content-fetcher",
            "services.content_fetcher.app",
            "Downloads, decrypts and streams report rows in batches.",
        ),
        ServiceEntry(
            "payment-notifier",
            "services.payment_notifier.app",
            "BKM confirmations, reconciliation, BKM and Moka calls.",
        ),
    )
}


def entry(name: str) -> ServiceEntry:
    try:
        return SERVICES[name]
    except KeyError:
        known = ", ".join(SERVICES)
        raise KeyError(f"unknown service {name!r}; known: {known}") from None
