"""BKM: SOAP envelopes, the client against the sandbox (in process), initializePayment,
reconciliation with QueryPaymentResult and the requestMerchInfo answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from schemas.bkm import (
    Bank,
    Bin,
    InitializePaymentRequest,
    Installment,
    RequestMerchInfoAnswer,
    RequestMerchInfoRequest,
    format_ts,
)
from schemas.events import (
    BkmBank,
    BkmBin,
    BkmInstallment,
    BkmPaymentInitFailed,
    BkmPaymentInitialized,
    BkmPaymentRequested,
    Event,
    PaymentConfirmed,
    PaymentFailed,
)
from services.common.bkm import soap as bkm_soap
from services.common.bkm.client import BkmAnswerInvalid, BkmClient
from services.common.bkm.signature import BkmSigner, BkmVerifier, canonical_string
from services.common.settings import StoreSettings
from services.common.signing.certs import generate_rsa_key, load_private_key, load_public_key
from services.common.stores.factory import open_payment_store, open_store
from services.common.stores.idempotency import IdempotencyStore
from services.common.stores.payments import FAILED, INITIALIZED, Outcome, PaymentStore
from services.payment_notifier.confirmations import ConfirmationDeps
from services.payment_notifier.initialize import InitDeps, handle_payment_requested
from services.payment_notifier.merch_info import MerchInfoDeps, PosSettings, handle_merch_info
from services.payment_notifier.outbox_relay import OutboxRelay, publishing
from services.payment_notifier.reconcile import ReconcileDeps, reconcile_due
from services.sandbox.bkm.app import BkmSandboxConfig, Payment, create_app
from services.sandbox.bkm.keys import BkmDemoKeys, ensure_demo_keys

ZONE = "Europe/Istanbul"
MID = "kopru-demo-merchant"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> BkmDemoKeys:
    return ensure_demo_keys(tmp_path_factory.mktemp("bkm"))


class Recorder:
    """The publisher: events as sent. ``got()`` first lets the outbox relay publish what
    the store holds (the service's relay does it when woken)."""

    def __init__(self, store: PaymentStore | None = None) -> None:
        self.events: list[Event] = []
        self.store = store

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    async def got(self) -> list[Event]:
        if self.store is not None:
            await OutboxRelay(self.store, publishing(self)).drain()
        return self.events


@dataclass
class World:
    client: BkmClient
    sandbox: Any
    payments: PaymentStore
    idem: IdempotencyStore
    published: Recorder


@pytest.fixture
async def world(keys: BkmDemoKeys, tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(BkmSandboxConfig(state_dir=keys.bkm_private.parent, merchant_id=MID))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bkm")
    client = BkmClient(
        "http://bkm/BKMExpress/BkmExpressPaymentService.ws",
        MID,
        BkmSigner(load_private_key(keys.merchant_private)),
        BkmVerifier(load_public_key(keys.bkm_public)),
        http,
    )
    settings = StoreSettings(url=f"sqlite:///{tmp_path}/k.db")
    payments, idem = open_payment_store(settings), open_store(settings)
    await payments.open()
    await idem.open()
    yield World(client, app.state.sandbox, payments, idem, Recorder(payments))
    await payments.close()
    await idem.close()
    await http.aclose()


def sample_request(ts: str) -> InitializePaymentRequest:
    """Şekil 6 as data: one bank, one bin, two installment options, an empty expInst."""
    return InitializePaymentRequest(
        mId="7f85e133-3cd2-4821-9bf7-eb0bcb55cbb3",
        sUrl="http://x/odemeBasarili.jsp",
        cUrl="http://x/odemeBasarisiz.jsp",
        sAmount=Decimal("78.99"),
        cAmount=Decimal("5.00"),
        instOpts=[
            Bank(
                id="9999",
                name="BankaIsmi",
                expBank="Banka firsatlarini kaçirmayin!",
                bins=[
                    Bin(
                        value="444411",
                        insts=[
                            Installment(
                                nofInst=1, amountInst=Decimal("80.99"), cAmount=Decimal("5.00"),
                                tAmount=Decimal("80.99"), cPaid1stInst=True,
                                expInst="Pesin ödemelerde 3 TL indirim",
                            ),
                            Installment(
                                nofInst=2, amountInst=Decimal("42.00"), cAmount=Decimal("5.00"),
                                tAmount=Decimal("84.00"), cPaid1stInst=False, expInst="",
                            ),
                        ],
                    )
                ],
            )
        ],
        ts=ts,
    )  # fmt: skip


def test_initialize_payment_xml_round_trips_with_the_signed_text(keys: BkmDemoKeys) -> None:
    signer = BkmSigner(load_private_key(keys.merchant_private))
    req = signer.sign(sample_request("20110729-15:05:23"))
    xml = bkm_soap.initialize_payment_xml(req)
    assert b"<sAmount>78,99</sAmount>" in xml
    assert b"<cPaid1stInst>true</cPaid1stInst>" in xml and b"<expInst />" in xml
    back = bkm_soap.read_initialize_payment(bkm_soap.parse(xml))
    assert canonical_string(back) == canonical_string(req)
    assert BkmVerifier(load_public_key(keys.merchant_public)).verify(back)


def test_soap_parser_refuses_entities_and_garbage() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    for bad in (bomb, b"not xml", b"<a/>"):
        with pytest.raises(bkm_soap.SoapError):
            bkm_soap.parse(bad)


async def test_initialize_publishes_token_once_per_order(world: World) -> None:
    deps = InitDeps(
        world.client, world.idem, world.payments, world.published, "http://s", "http://c", 60
    )
    event = BkmPaymentRequested(order_id="order-1", sale_amount=Decimal("105.99"))
    await handle_payment_requested(event, deps)
    await handle_payment_requested(event, deps)  # redelivered: no second BKM call
    assert len(world.sandbox.payments) == 1
    assert len(await world.published.got()) == 1
    out = (await world.published.got())[0]
    assert isinstance(out, BkmPaymentInitialized)
    assert out.token in world.sandbox.payments and out.redirect_url.endswith(out.token)
    assert world.sandbox.payments[out.token].order_amount == Decimal("105.99")
    row = await world.payments.get(out.token)
    assert row is not None and row.state == INITIALIZED and row.order_id == "order-1"


async def test_initialize_with_installment_options(world: World) -> None:
    deps = InitDeps(
        world.client, world.idem, world.payments, world.published, "http://s", "http://c", 60
    )
    inst = BkmInstallment(
        nof_inst=3, amount_inst=Decimal("35.00"), c_amount=Decimal("0.00"),
        t_amount=Decimal("105.00"), c_paid_1st_inst=False,
    )  # fmt: skip
    event = BkmPaymentRequested(
        order_id="order-2",
        sale_amount=Decimal("105.00"),
        banks=[
            BkmBank(id="0062", name="Garanti", bins=[BkmBin(value="444411", installments=[inst])])
        ],
    )
    await handle_payment_requested(event, deps)
    assert isinstance((await world.published.got())[0], BkmPaymentInitialized)


async def test_initialize_refused_by_bkm_is_a_failure_event(world: World, tmp_path: Path) -> None:
    world.client.merchant_id = "unknown-merchant"
    deps = InitDeps(
        world.client, world.idem, world.payments, world.published, "http://s", "http://c", 60
    )
    await handle_payment_requested(
        BkmPaymentRequested(order_id="order-3", sale_amount=Decimal("1.00")), deps
    )
    out = (await world.published.got())[0]
    assert isinstance(out, BkmPaymentInitFailed) and out.code == "2"


async def test_answer_signed_with_another_key_is_refused(world: World) -> None:
    world.client.verifier = BkmVerifier(generate_rsa_key(2048).public_key())
    with pytest.raises(BkmAnswerInvalid):
        await world.client.initialize_payment(
            sample_request(world.client.now_ts()).model_copy(update={"mId": MID})
        )


async def test_reconciliation_publishes_a_lost_confirmation_once(world: World) -> None:
    for token, paid in (("t-paid", True), ("t-open", None)):
        world.sandbox.payments[token] = Payment(token, Decimal("10.00"), "", "", paid)
        await world.payments.record_initialized(token, f"o-{token}", due_at=time.time() - 1)
    confirm = ConfirmationDeps(
        verifier=world.client.verifier, store=world.payments, publish=world.published
    )
    deps = ReconcileDeps(world.client, confirm, recheck_s=0.0, give_up_after_s=3600)
    assert await reconcile_due(deps) == 2
    await reconcile_due(deps)  # again: the paid one is settled, the open one still pending
    events = await world.published.got()
    assert len(events) == 1
    assert isinstance(events[0], PaymentConfirmed)
    assert events[0].reconciled and events[0].source == "reconciliation"
    assert events[0].token == "t-paid" and events[0].order_id == "o-t-paid"
    deps.give_up_after_s = 0.0
    await reconcile_due(deps)
    assert isinstance((await world.published.got())[-1], PaymentFailed)
    assert len(await world.published.got()) == 2


async def test_merch_info_answer_is_signed_in_order_and_keeps_passwords_out_of_logs(
    world: World, keys: BkmDemoKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    await world.payments.record_initialized("t-m", "o-m", due_at=time.time() + 60)
    bkm_signer = BkmSigner(load_private_key(keys.bkm_private))
    deps = MerchInfoDeps(
        signer=BkmSigner(load_private_key(keys.merchant_private)),
        verifier=BkmVerifier(load_public_key(keys.bkm_public)),
        store=world.payments,
        pos=PosSettings(pos_url="https://pos", pos_uid="u", pos_pwd=SecretStr("Pos-S3cret!")),
    )
    now = format_ts(datetime.now(UTC), ZONE)
    req = bkm_signer.sign(
        RequestMerchInfoRequest(t="t-m", bid="9999", bName="B", cBin="444411", nofInst="1", ts=now)
    )
    pairs = [(k, getattr(req, k)) for k in ("t", "bid", "bName", "cBin", "nofInst", "ts", "s")]
    body = bkm_soap.to_bytes(
        bkm_soap.envelope(
            "requestMerchInfo", "requestMerchInfoWSRequest", bkm_soap.NS_MERCHANT_WS, pairs
        )
    )
    reply = await handle_merch_info(body, deps)
    assert reply.status == 200
    f = bkm_soap.parse(reply.body).fields
    answer = RequestMerchInfoAnswer.model_validate(f)
    assert f["posPwd"] == "Pos-S3cret!" and f["mpiPwd"] == ""
    assert BkmVerifier(load_public_key(keys.merchant_public)).verify(answer)
    assert "Pos-S3cret!" not in capsys.readouterr().out
    forged = body.replace(b"<bid>9999</bid>", b"<bid>0001</bid>")
    assert (await handle_merch_info(forged, deps)).status == 400


async def test_a_cancel_the_query_contradicts_is_alerted_without_a_second_event(
    world: World,
) -> None:
    from services.payment_notifier import metrics

    for token, paid in (("t-cancel-paid", True), ("t-cancel-unpaid", False)):
        world.sandbox.payments[token] = Payment(token, Decimal("10.00"), "", "", paid)
        outcome = Outcome(
            token, FAILED, f"fp-{token}", "{}", "{}", "cancel_redirect", recheck_at=time.time() - 1
        )
        await world.payments.record_outcome(outcome, "owner", 30)
    confirm = ConfirmationDeps(
        verifier=world.client.verifier, store=world.payments, publish=world.published
    )
    before = metrics.ALERTS.labels("query_disagrees")._value.get()
    assert await reconcile_due(ReconcileDeps(world.client, confirm, recheck_s=0.0)) == 2
    assert metrics.ALERTS.labels("query_disagrees")._value.get() == before + 1
    assert (await world.published.got()) == []
    assert await reconcile_due(ReconcileDeps(world.client, confirm, recheck_s=0.0)) == 0
