"""payment-notifier: BKM confirmations (HTTP), reconciliation, initializePayment,
requestMerchInfo and Moka dealer applications.

Each provider is enabled by its own settings section: ``KOPRU_BKM__*`` (BKM Express:
routes, initializePayment, reconciliation, the outbox relay) and ``KOPRU_MOKA__*`` (Moka
dealer applications); either or both. A given section must be complete and valid or the
service stops at start naming the variable (services/common/settings.py).

Thin wiring only (docs/writing-a-service.md): settings, adapters opened in on_start,
subscribers that call the decisions in this package, the HTTP routes and two loops (the
outbox relay and reconciliation) that run in every replica and share the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, Field, field_validator, model_validator

from schemas.events import (
    BKM_CONFIRMATIONS,
    BKM_INITIALIZED,
    BKM_PAYMENT_REQUESTED,
    MOKA_APPLICATION_REQUESTED,
    MOKA_APPLICATION_RESULTS,
    BkmPaymentRequested,
    Event,
    MokaDealerApplicationRequested,
    TopicSpec,
)
from services.common.bkm.client import BkmClient
from services.common.bkm.settings import (
    BkmKeySettings,
    signer_from_settings,
    verifier_from_settings,
)
from services.common.kafka.broker import consumer_options, publish_event, subscribed_topics
from services.common.moka.auth import dealer_authentication
from services.common.moka.client import MokaClient
from services.common.moka.settings import MokaSettings
from services.common.observability.logging import get_logger
from services.common.service import Service, new_service
from services.common.settings import BaseServiceSettings, SettingsError, optional_section
from services.common.stores.factory import open_payment_store, open_store
from services.common.stores.idempotency import IdempotencyStore
from services.common.stores.payments import PaymentStore
from services.payment_notifier.confirmations import ConfirmationDeps
from services.payment_notifier.http_routes import payment_routes
from services.payment_notifier.initialize import InitDeps, handle_payment_requested
from services.payment_notifier.merch_info import MerchInfoDeps, PosSettings
from services.payment_notifier.moka_applications import MokaDeps, handle_application
from services.payment_notifier.outbox_producer import OutboxProducer
from services.payment_notifier.outbox_relay import OutboxRelay
from services.payment_notifier.reconcile import ReconcileDeps, reconcile_due

log = get_logger(__name__)

BKM_PREPROD = "https://preprod.bkmexpress.com.tr:9620/BKMExpress/BkmExpressPaymentService.ws"


class PaymentsSettings(BaseModel):
    """How the payment-notifier talks to BKM and how it keeps outcomes."""

    bkm_endpoint: str = BKM_PREPROD
    # sUrl / cUrl sent in initializePayment: where BKM sends the user back.
    success_url: str = "http://127.0.0.1:8080/bkm/success"
    cancel_url: str = "http://127.0.0.1:8080/bkm/cancel"
    # How long a recorded outcome's publisher holds it before the relay may take over.
    publish_lease_s: float = Field(default=30.0, gt=0)
    relay_interval_s: float = Field(default=5.0, gt=0)
    # After a recorded outcome wakes the relay, it waits this long for more before it
    # publishes: under load one pass then publishes (and marks, one statement) a hundred
    # rows instead of a few. The longest an event waits for Kafka beyond its answer.
    relay_linger_s: float = Field(default=0.1, ge=0, le=5)
    # Query BKM for initialized payments with no outcome after this long.
    reconcile_after_s: float = Field(default=900.0, ge=0)
    reconcile_recheck_s: float = Field(default=300.0, gt=0)
    reconcile_give_up_s: float = Field(default=86_400.0, gt=0)
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    purge_interval_s: float = Field(default=3600.0, gt=0)
    http_timeout_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _one_tolerance(cls, data: object) -> object:
        if isinstance(data, dict) and "ts_tolerance_s" in data:
            raise ValueError(
                "KOPRU_PAYMENTS__TS_TOLERANCE_S is gone: the one ts tolerance is "
                "KOPRU_BKM__TS_TOLERANCE_S"
            )
        return data


class Settings(BaseServiceSettings):
    service_name: str = "payment-notifier"
    # None: the provider is off. Given (any KOPRU_BKM__* / KOPRU_MOKA__* value, or a
    # secret file bkm__* / moka__*), it must be complete; ENABLED=false turns it off.
    bkm: BkmKeySettings | None = None
    moka: MokaSettings | None = None
    payments: PaymentsSettings = Field(default_factory=PaymentsSettings)
    pos: PosSettings = Field(default_factory=PosSettings)

    @field_validator("bkm", "moka", mode="before")
    @classmethod
    def _optional(cls, value: object) -> object:
        return optional_section(value)

    @model_validator(mode="after")
    def _pos_for_bkm(self) -> Settings:
        # requestMerchInfo answers BKM with the POS to charge (BKM "requestMerchInfo").
        given = {"KOPRU_POS__POS_URL": self.pos.pos_url, "KOPRU_POS__POS_UID": self.pos.pos_uid}
        missing = [name for name, value in given.items() if not value]
        if self.bkm is not None and missing:
            raise ValueError(f"BKM is enabled and {', '.join(missing)} is not set")
        return self


def check(settings: BaseServiceSettings) -> None:
    """Before running (services/registry.py): at least one provider. Not a model rule: the
    contracts are generated from ``Settings()``, with every route and subscriber described."""
    assert isinstance(settings, Settings)
    if settings.bkm is None and settings.moka is None:
        raise SettingsError(
            "invalid settings:\n  no payment provider is enabled: set the KOPRU_BKM__* "
            "section (MERCHANT_ID, PRIVATE_KEY_FILE, BKM_PUBLIC_KEY_FILE) and/or the "
            "KOPRU_MOKA__* section (DEALER_CODE, USERNAME, PASSWORD)"
        )


@dataclass
class Runtime:
    """Adapters opened in on_start; the routes and subscribers read them from here."""

    confirm: ConfirmationDeps | None = None
    merch: MerchInfoDeps | None = None
    init: InitDeps | None = None
    moka: MokaDeps | None = None
    reconcile: ReconcileDeps | None = None
    relay: OutboxRelay | None = None
    outbox: OutboxProducer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def _loop(
    name: str, interval_s: float, step: Callable[[], Awaitable[object]]
) -> asyncio.Task[None]:
    async def run() -> None:
        while True:
            # Sleep first: on_start runs before the broker starts, and the steps publish.
            await asyncio.sleep(interval_s)
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("background step failed", loop=name, error=str(exc))

    return asyncio.create_task(run(), name=name)


def build(settings: Settings) -> Service:
    """The service with the enabled providers' routes and subscribers. With none enabled
    (the contracts' ``Settings()``), everything is described and start refuses to run."""
    service = new_service(
        "payment-notifier",
        settings,
        description="BKM Express confirmations, reconciliation, initializePayment, "
        "requestMerchInfo; Moka dealer applications.",
    )
    describe_all = settings.bkm is None and settings.moka is None
    rt = Runtime()
    payments = open_payment_store(settings.store)
    idempotency = open_store(settings.store)

    async def start() -> None:
        check(settings)
        await payments.open()
        await idempotency.open()
        if settings.bkm is not None:
            _start_bkm(settings, settings.bkm, service, rt, payments, idempotency)
            assert rt.outbox is not None
            await rt.outbox.start()
        if settings.moka is not None:
            moka_http = httpx.AsyncClient(timeout=settings.moka.timeout_s)
            rt.closers.append(moka_http.aclose)
            rt.moka = MokaDeps(
                MokaClient(settings.moka.base_url, dealer_authentication(settings.moka), moka_http),
                idempotency,
                _publisher(service, MOKA_APPLICATION_RESULTS),
            )

    async def start_loops() -> None:
        async def purge() -> None:
            await payments.purge()
            await idempotency.purge()

        rt.tasks.append(_loop("purge", settings.payments.purge_interval_s, purge))
        if rt.relay is not None and rt.reconcile is not None:
            rt.tasks += _bkm_loops(settings.payments, rt.relay, rt.reconcile)

    async def stop() -> None:
        for task in rt.tasks:
            task.cancel()
        if rt.tasks:  # bounded: a loop that ignored its cancellation never blocks the stop
            _, late = await asyncio.wait(rt.tasks, timeout=10)
            for task in late:
                log.error("background loop did not stop", loop=task.get_name())
        rt.tasks.clear()
        if rt.relay is not None:  # what it still held goes to the other replicas at once
            await rt.relay.release()
        for close in rt.closers:
            with contextlib.suppress(Exception):
                await close()
        await payments.close()
        await idempotency.close()

    service.on_start += [start, start_loops]
    service.on_stop.append(stop)
    service.readiness["payments-store"] = payments.ping
    service.readiness["loops"] = _loops_running(rt)

    if settings.bkm is not None or describe_all:

        @service.broker.subscriber(  # type: ignore[untyped-decorator]
            *subscribed_topics(BKM_PAYMENT_REQUESTED.name, settings.kafka, service.group),
            **consumer_options(settings.kafka, service.group),
        )
        async def on_payment_requested(event: BkmPaymentRequested) -> None:
            assert rt.init is not None
            await handle_payment_requested(event, rt.init)

        service.routes.extend(payment_routes(lambda: rt.confirm, lambda: rt.merch))

    if settings.moka is not None or describe_all:

        @service.broker.subscriber(  # type: ignore[untyped-decorator]
            *subscribed_topics(MOKA_APPLICATION_REQUESTED.name, settings.kafka, service.group),
            **consumer_options(settings.kafka, service.group),
        )
        async def on_moka_application(event: MokaDealerApplicationRequested) -> None:
            assert rt.moka is not None
            await handle_application(event, rt.moka)

    return service


def _publisher(service: Service, spec: TopicSpec) -> Callable[[Event], Awaitable[None]]:
    async def publish(event: Event) -> None:
        await publish_event(service.broker, spec, event)

    return publish


def _start_bkm(
    settings: Settings,
    bkm_settings: BkmKeySettings,
    service: Service,
    rt: Runtime,
    payments: PaymentStore,
    idempotency: IdempotencyStore,
) -> None:
    pay = settings.payments
    signer = signer_from_settings(bkm_settings)
    verifier = verifier_from_settings(bkm_settings)
    http = httpx.AsyncClient(timeout=pay.http_timeout_s)
    rt.closers.append(http.aclose)
    zone, tolerance = bkm_settings.ts_zone, bkm_settings.ts_tolerance_s
    bkm = BkmClient(pay.bkm_endpoint, bkm_settings.merchant_id, signer, verifier, http, zone)
    publish = _publisher(service, BKM_CONFIRMATIONS)

    rt.outbox = OutboxProducer(settings.kafka, client_id=service.name)
    rt.closers.append(rt.outbox.stop)  # after the relay's task has stopped
    rt.relay = OutboxRelay(
        payments,
        rt.outbox.enqueue_many,
        lease_s=pay.publish_lease_s,
        interval_s=pay.relay_interval_s,
        linger_s=pay.relay_linger_s,
    )
    rt.confirm = ConfirmationDeps(
        verifier=verifier,
        store=payments,
        publish=publish,
        ts_tolerance_s=tolerance,
        ts_zone=zone,
        lease_s=pay.publish_lease_s,
        recheck_failures_after_s=pay.reconcile_after_s,
        relay=rt.relay,
    )
    rt.merch = MerchInfoDeps(signer, verifier, payments, settings.pos, tolerance, zone)
    rt.init = InitDeps(
        bkm,
        idempotency,
        payments,
        _publisher(service, BKM_INITIALIZED),
        pay.success_url,
        pay.cancel_url,
        pay.reconcile_after_s,
    )
    rt.reconcile = ReconcileDeps(bkm, rt.confirm, pay.reconcile_recheck_s, pay.reconcile_give_up_s)


def _bkm_loops(
    pay: PaymentsSettings, relay: OutboxRelay, reconcile: ReconcileDeps
) -> list[asyncio.Task[None]]:
    async def run_relay() -> None:
        # on_start runs before the broker starts: the first pass waits an interval.
        await asyncio.sleep(pay.relay_interval_s)
        await relay.run()

    return [
        asyncio.create_task(run_relay(), name="outbox-relay"),
        _loop("reconcile", pay.reconcile_interval_s, lambda: reconcile_due(reconcile)),
    ]


def _loops_running(rt: Runtime) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        if not rt.tasks:
            raise RuntimeError("background loops not started")
        for task in rt.tasks:
            if task.done():
                raise RuntimeError(f"loop {task.get_name()} stopped")

    return check
