"""The BKM sandbox's HTTP app.

BKM side (bkm-express-xml-integration.md):
- POST /BKMExpress/BkmExpressPaymentService.ws  SOAP initializePayment (Şekil 6 → 7) and
  queryPaymentResult; the merchant's signature is checked with its public key, the ts
  against the clock, and answers are signed with BKM's key.

Admin (for the demo and the tests):
- POST /_sandbox/pay     {token?, outcome, amount, replay, concurrent, tamper, stale_s,
                        delay_s, drop, leak_card_data, merch_info, confirmation_urls?,
                        redirect}: settle a payment in BKM's books, then post the signed
                        confirmation (and replays, concurrent copies, faults) to the
                        merchant; answers every HTTP status and body the merchant gave.
- POST /_sandbox/merchinfo {token}: call the merchant's requestMerchInfo (Şekil 8).
- GET  /_sandbox/payments/{token}: what BKM knows about a payment.
- GET  /healthz
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.bkm import (
    BkmResult,
    InitializePaymentAnswer,
    QueryPaymentResultAnswer,
    QueryPaymentResultRequest,
    RequestMerchInfoAnswer,
    RequestMerchInfoRequest,
    format_ts,
    ts_within,
)
from services.common.bkm import soap as bkm_soap
from services.common.bkm.signature import BkmSigner, BkmVerifier
from services.common.signing.certs import load_private_key, load_public_key
from services.sandbox.bkm.keys import ensure_demo_keys
from services.sandbox.bkm.messages import PayOptions, signed_fields

SERVICE_PATH = "/BKMExpress/BkmExpressPaymentService.ws"


@dataclass
class BkmSandboxConfig:
    state_dir: Path
    merchant_id: str = "kopru-demo-merchant"
    confirmation_urls: list[str] = field(default_factory=list)
    merch_info_url: str | None = None
    merchant_public_key: Path | None = None  # default: the demo merchant key
    redirect_base: str = "http://127.0.0.1/bkm/express"
    ts_zone: str = "Europe/Istanbul"
    ts_tolerance_s: float = 300.0


@dataclass
class Payment:
    token: str
    order_amount: Decimal
    success_url: str
    cancel_url: str
    paid: bool | None = None  # None: the user has not finished


@dataclass
class SandboxState:
    config: BkmSandboxConfig
    signer: BkmSigner  # BKM's key
    merchant: BkmVerifier  # the merchant's public key
    payments: dict[str, Payment] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new_token(self) -> str:
        return f"{next(self.counter):06d}{secrets.randbelow(10**9):09d}"


class PayRequest(BaseModel):
    token: str | None = Field(default=None, max_length=128)
    outcome: str = Field(default="success", pattern="^(success|cancel)$")
    amount: Decimal = Decimal("100.00")
    replay: int = Field(default=0, ge=0, le=100)  # extra identical posts, one after another
    concurrent: int = Field(default=1, ge=1, le=50)  # identical posts at once, own connections
    tamper: bool = False
    stale_s: float = 0.0
    delay_s: float = Field(default=0.0, ge=0, le=60)
    drop: bool = False  # settle at BKM but never post (reconciliation finds it)
    leak_card_data: bool = False
    merch_info: bool = False  # call requestMerchInfo first, as BKM does before charging
    redirect: bool = False  # also post the success / cancel redirect
    confirmation_urls: list[str] | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml")


def _fault(message: str) -> Response:
    return _soap(bkm_soap.fault_xml("soapenv:Server", message), 500)


def create_app(config: BkmSandboxConfig) -> Starlette:
    keys = ensure_demo_keys(config.state_dir)
    merchant_pub = config.merchant_public_key or keys.merchant_public
    state = SandboxState(
        config,
        BkmSigner(load_private_key(keys.bkm_private)),
        BkmVerifier(load_public_key(merchant_pub)),
    )
    tolerance = timedelta(seconds=config.ts_tolerance_s)

    def error_answer(op: str, wrapper: str, code: str, message: str) -> Response:
        return _soap(bkm_soap.answer_xml(op, wrapper, [], BkmResult(resCode=code, resMsg=message)))

    async def service(request: Request) -> Response:
        try:
            call = bkm_soap.parse(await request.body())
        except bkm_soap.SoapError as exc:
            return _fault(str(exc))
        if call.operation == "initializePayment":
            return initialize(call)
        if call.operation == "queryPaymentResult":
            return query(call)
        return _fault(f"unknown operation {call.operation}")

    def initialize(call: bkm_soap.SoapCall) -> Response:
        op, wrapper = "initializePaymentResponse", "InitializePaymentWSResponse"
        try:
            req = bkm_soap.read_initialize_payment(call)
        except ValueError as exc:
            return error_answer(op, wrapper, "5", f"Invalid request: {exc}"[:300])
        if req.mId != config.merchant_id:
            return error_answer(op, wrapper, "2", "Unknown Error: merchant not registered")
        if not state.merchant.verify(req):
            return error_answer(op, wrapper, "3", "MAC verification fail")
        if not ts_within(req.ts, _now(), tolerance, config.ts_zone):
            return error_answer(op, wrapper, "4", "Request Not Synchronized")
        token = state.new_token()
        state.payments[token] = Payment(token, req.sAmount, req.sUrl, req.cUrl)
        answer = state.signer.sign(
            InitializePaymentAnswer(
                t=token,
                url=f"{config.redirect_base}?t={token}",
                ts=format_ts(_now(), config.ts_zone),
            )
        )
        pairs = [("t", answer.t), ("url", answer.url), ("ts", answer.ts), ("s", answer.s)]
        return _soap(
            bkm_soap.answer_xml(op, wrapper, pairs, BkmResult(resCode="0", resMsg="Success"))
        )

    def query(call: bkm_soap.SoapCall) -> Response:
        op, wrapper = "queryPaymentResultResponse", "QueryPaymentResultWSResponse"
        f = call.fields
        req = QueryPaymentResultRequest(
            mId=f.get("mId") or "", t=f.get("t") or "", ts=f.get("ts") or "", s=f.get("s")
        )
        if not state.merchant.verify(req):
            return error_answer(op, wrapper, "3", "MAC verification fail")
        if not ts_within(req.ts, _now(), tolerance, config.ts_zone):
            return error_answer(op, wrapper, "4", "Request Not Synchronized")
        payment = state.payments.get(req.t)
        success = "true" if payment is not None and payment.paid else "false"
        answer = state.signer.sign(
            QueryPaymentResultAnswer(t=req.t, success=success, ts=format_ts(_now(), config.ts_zone))
        )
        pairs = [("t", answer.t), ("success", answer.success), ("ts", answer.ts), ("s", answer.s)]
        return _soap(
            bkm_soap.answer_xml(op, wrapper, pairs, BkmResult(resCode="0", resMsg="Success"))
        )

    async def merch_info_call(token: str) -> dict[str, Any]:
        url = config.merch_info_url
        if not url:
            return {"error": "no merch_info_url configured"}
        req = state.signer.sign(
            RequestMerchInfoRequest(
                t=token,
                bid="9999",
                bName="ALL",
                cBin="444411",
                nofInst="1",
                ts=format_ts(_now(), config.ts_zone),
            )
        )
        pairs = [(k, getattr(req, k)) for k in ("t", "bid", "bName", "cBin", "nofInst", "ts", "s")]
        root = bkm_soap.envelope(
            "requestMerchInfo", "requestMerchInfoWSRequest", bkm_soap.NS_MERCHANT_WS, pairs
        )
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(
                url, content=bkm_soap.to_bytes(root), headers={"Content-Type": "text/xml"}
            )
        try:
            call = bkm_soap.parse(resp.content)
        except bkm_soap.SoapError as exc:
            return {"status": resp.status_code, "error": str(exc)}
        if call.fault:
            return {"status": resp.status_code, "error": call.fault}
        f = call.fields
        answer = RequestMerchInfoAnswer.model_validate({**f, "ts": f.get("ts") or ""})
        verified = state.merchant.verify(answer)
        # The POS password is BKM's to use, not to show: the admin answer omits it.
        return {"status": resp.status_code, "verified": verified, "posUrl": f.get("posUrl")}

    # One pooled client: concurrent posts of a token go out on separate connections
    # (HTTP/1.1 keeps one request per connection at a time). Idle connections are
    # dropped after 2 s, before the merchant's server drops them (uvicorn: 5 s): a post
    # never goes out on a connection the server is closing at that moment.
    poster = httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=200, keepalive_expiry=2.0)
    )

    async def post_once(url: str, fields: dict[str, str]) -> dict[str, Any]:
        try:
            resp = await poster.post(url, data=fields)
        except httpx.HTTPError as exc:
            return {"url": url, "status": None, "error": type(exc).__name__}
        try:
            body = resp.json()
        except ValueError:
            body = {"text": resp.text[:500]}
        return {
            "url": url,
            "status": resp.status_code,
            "body": body,
            "replay": resp.headers.get("x-kopru-replay") == "true",
        }

    async def pay(request: Request) -> Response:
        try:
            req = PayRequest.model_validate_json(await request.body())
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        token = req.token or state.new_token()
        payment = state.payments.setdefault(token, Payment(token, req.amount, "", ""))
        payment.paid = req.outcome == "success"
        result: dict[str, Any] = {"token": token, "posts": []}
        if req.merch_info:
            result["merch_info"] = await merch_info_call(token)
        if req.drop:
            result["dropped"] = True
            return JSONResponse(result)
        urls = req.confirmation_urls or config.confirmation_urls
        if not urls:
            return JSONResponse({"error": "no confirmation url configured"}, status_code=422)
        opts = PayOptions(
            outcome=req.outcome,
            amount=req.amount,
            tamper=req.tamper,
            stale_s=req.stale_s,
            leak_card_data=req.leak_card_data,
        )
        fields = signed_fields(token, opts, state.signer, config.ts_zone)
        if req.delay_s:
            await asyncio.sleep(req.delay_s)
        first = await asyncio.gather(
            *(post_once(urls[i % len(urls)], fields) for i in range(req.concurrent))
        )
        posts = list(first)
        for i in range(req.replay):
            posts.append(await post_once(urls[(i + 1) % len(urls)], fields))
        if req.redirect:
            target = payment.success_url if req.outcome == "success" else payment.cancel_url
            if target:
                posts.append(await post_once(target, fields))
        result["posts"] = posts
        return JSONResponse(result)

    async def merch_info(request: Request) -> Response:
        body = await request.json()
        return JSONResponse(await merch_info_call(str(body.get("token", ""))))

    async def show(request: Request) -> Response:
        p = state.payments.get(request.path_params["token"])
        if p is None:
            return JSONResponse({"error": "unknown token"}, status_code=404)
        return JSONResponse({"token": p.token, "paid": p.paid, "amount": str(p.order_amount)})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "payments": len(state.payments)})

    app = Starlette(
        routes=[
            Route(SERVICE_PATH, service, methods=["POST"]),
            Route("/_sandbox/pay", pay, methods=["POST"]),
            Route("/_sandbox/merchinfo", merch_info, methods=["POST"]),
            Route("/_sandbox/payments/{token}", show),
            Route("/healthz", healthz),
        ]
    )
    app.state.sandbox = state
    return app
