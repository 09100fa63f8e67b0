"""`kopru payment bkm|moka-application`: publish what upstream systems publish, and follow it.

- ``kopru payment bkm --order-id ORD-1 --amount 105.99 --wait``: a ``BkmPaymentRequested``
  on ``payments.bkm.payment-requested``; with --wait, the ``BkmPaymentInitialized`` (token,
  the redirect URL to send the user to) or ``BkmPaymentInitFailed``, then the payment's
  outcome (``PaymentConfirmed`` / ``PaymentFailed`` on ``payments.bkm.confirmations``).
- ``kopru payment moka-application --file application.json --wait``: a
  ``MokaDealerApplicationRequested`` (CreateMokaPosRequest's fields, moka-dealer-api.txt);
  with --wait, its ``MokaDealerApplicationResult`` (created / rejected / error).

Settings as the services read them (``KOPRU_KAFKA__*``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.events import (
    BKM_CONFIRMATIONS,
    BKM_INITIALIZED,
    BKM_PAYMENT_REQUESTED,
    MOKA_APPLICATION_REQUESTED,
    MOKA_APPLICATION_RESULTS,
    BkmPaymentInitFailed,
    BkmPaymentInitialized,
    BkmPaymentRequested,
    Event,
    MokaDealerApplicationRequested,
    MokaDealerApplicationResult,
    PaymentConfirmed,
    PaymentFailed,
    TopicSpec,
    topic,
)
from services.cli.publishing import publish_one, run_or_exit
from services.common.kafka.clients import new_consumer
from services.common.settings import BaseServiceSettings, KafkaSettings, load_settings

payment_app = typer.Typer(
    help="Start a BKM Express payment or a Moka dealer application, as upstream does.",
    no_args_is_help=True,
)


async def follow(
    kafka: KafkaSettings,
    specs: list[TopicSpec],
    match: Callable[[Event], bool],
    done: Callable[[Event], bool],
    *,
    timeout_s: float,
) -> list[Event]:
    """The matching events on ``specs`` (read from the beginning), until one is ``done``."""
    consumer = new_consumer(kafka, fetch_max_wait_ms=200)
    await consumer.start()
    seen: list[Event] = []
    try:
        deadline = time.monotonic() + timeout_s
        tps: list[TopicPartition] = []
        while not tps and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(s.name, p)
                for s in specs
                for p in sorted(consumer.partitions_for_topic(s.name) or [])
            ]
            if not tps:
                await asyncio.sleep(0.2)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                for rec in records:
                    try:
                        ev = topic(tp.topic).parse(rec.value)
                    except (ValidationError, ValueError):
                        continue
                    if match(ev):
                        seen.append(ev)
                        typer.echo(describe(ev))
                        if done(ev):
                            return seen
        return seen
    finally:
        await consumer.stop()


def describe(ev: Event) -> str:
    if isinstance(ev, BkmPaymentInitialized):
        return f"initialized: token {ev.token}; send the user to {ev.redirect_url}"
    if isinstance(ev, BkmPaymentInitFailed):
        return f"initializePayment FAILED: {ev.code} {ev.description}"
    if isinstance(ev, PaymentConfirmed):
        return f"confirmed ({ev.source}{', reconciled' if ev.reconciled else ''})"
    if isinstance(ev, PaymentFailed):
        return f"failed ({ev.source}): {ev.reason}"
    if isinstance(ev, MokaDealerApplicationResult):
        pos = f" MokaPosRequestId {ev.moka_pos_request_id}" if ev.moka_pos_request_id else ""
        return f"{ev.outcome}: {ev.result_code}{pos} {ev.result_message or ''}".rstrip()
    return ev.event_type


def _amount(text: str, name: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise typer.BadParameter(f"{name} must be an amount like 105.99") from None


@payment_app.command("bkm")
def bkm_command(
    order_id: str = typer.Option(..., help="your order id (1-64 of A-Z a-z 0-9 . _ : -)"),
    amount: str = typer.Option(..., help="sale amount in TRY, e.g. 105.99"),
    cargo: str = typer.Option("0.00", help="cargo amount in TRY"),
    wait: bool = typer.Option(False, help="follow initializePayment, then the outcome"),
    timeout_s: float = typer.Option(600.0, help="how long --wait waits"),
) -> None:
    """Publish a BkmPaymentRequested (payment-notifier calls BKM initializePayment)."""
    settings = load_settings(BaseServiceSettings)
    try:
        event = BkmPaymentRequested(
            order_id=order_id,
            sale_amount=_amount(amount, "--amount"),
            cargo_amount=_amount(cargo, "--cargo"),
            correlation_id=uuid.uuid4().hex,
        )
    except ValidationError as exc:
        raise typer.BadParameter(_first_error(exc)) from None
    run_or_exit(publish_one(settings.kafka, BKM_PAYMENT_REQUESTED, event))
    typer.echo(f"published BkmPaymentRequested {order_id} (correlation id {event.correlation_id})")
    if not wait:
        return
    tokens: set[str] = set()

    def mine(ev: Event) -> bool:
        if isinstance(ev, BkmPaymentInitialized | BkmPaymentInitFailed):
            if ev.order_id != order_id:
                return False
            if isinstance(ev, BkmPaymentInitialized):
                tokens.add(ev.token)
            return True
        return isinstance(ev, PaymentConfirmed | PaymentFailed) and ev.token in tokens

    def final(ev: Event) -> bool:
        return isinstance(ev, BkmPaymentInitFailed | PaymentConfirmed | PaymentFailed)

    specs = [BKM_INITIALIZED, BKM_CONFIRMATIONS]
    seen = asyncio.run(follow(settings.kafka, specs, mine, final, timeout_s=timeout_s))
    if not seen or not final(seen[-1]):
        typer.echo(f"no outcome within {timeout_s:.0f} s", err=True)
        raise typer.Exit(1)
    if not isinstance(seen[-1], PaymentConfirmed):
        raise typer.Exit(1)


@payment_app.command("moka-application")
def moka_command(
    file: Path = typer.Option(..., exists=True, dir_okay=False, help="the application (JSON)"),
    application_id: str = typer.Option("", help="your id for it (default: a new one)"),
    wait: bool = typer.Option(False, help="wait for Moka's answer"),
    timeout_s: float = typer.Option(120.0, help="how long --wait waits"),
) -> None:
    """Publish a MokaDealerApplicationRequested (payment-notifier calls
    /Dealer/CreateMokaPosRequest): ApplicantType, MokaPosProductId, ContactName, Email,
    PhoneNumber, Title, WebSiteURL, CityCode, CountryCode, TRIdentityNumber, TaxNumber,
    NaceCode, RevenueRange, ClientIP."""
    settings = load_settings(BaseServiceSettings)
    try:
        application = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from None
    if not isinstance(application, dict):
        raise typer.BadParameter(f"{file} must hold one JSON object")
    try:
        event = MokaDealerApplicationRequested(
            application_id=application_id or f"app-{uuid.uuid4().hex[:12]}",
            application=application,
            correlation_id=uuid.uuid4().hex,
        )
    except ValidationError as exc:
        raise typer.BadParameter(_first_error(exc)) from None
    run_or_exit(publish_one(settings.kafka, MOKA_APPLICATION_REQUESTED, event))
    typer.echo(
        f"published MokaDealerApplicationRequested {event.application_id} "
        f"(correlation id {event.correlation_id})"
    )
    if not wait:
        return

    def mine(ev: Event) -> bool:
        return (
            isinstance(ev, MokaDealerApplicationResult)
            and ev.application_id == event.application_id
        )

    specs = [MOKA_APPLICATION_RESULTS]
    seen = asyncio.run(follow(settings.kafka, specs, mine, mine, timeout_s=timeout_s))
    if not seen:
        typer.echo(f"no answer within {timeout_s:.0f} s", err=True)
        raise typer.Exit(1)
    result = seen[-1]
    if not isinstance(result, MokaDealerApplicationResult) or result.outcome != "created":
        raise typer.Exit(1)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
