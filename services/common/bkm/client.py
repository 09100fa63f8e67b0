"""Calls to BKM Express's payment web service: initializePayment and QueryPaymentResult.

Requests are signed with the merchant's key off the event loop; answers are verified
with BKM's pinned public key on the raw received values (fail closed). Transport
trouble (connection, timeout, HTTP 5xx) raises ``BkmUnavailable`` (retry later);
anything else that is wrong with an answer raises ``BkmAnswerInvalid``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from schemas.bkm import (
    BkmResult,
    InitializePaymentAnswer,
    InitializePaymentRequest,
    QueryPaymentResultAnswer,
    QueryPaymentResultRequest,
    format_ts,
)
from services.common.bkm import soap as bkm_soap
from services.common.bkm.signature import BkmSigner, BkmVerifier

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


class BkmUnavailable(Exception):
    """BKM could not be reached or answered 5xx: try again later."""


class BkmAnswerInvalid(Exception):
    """BKM answered, but the answer is not well formed or its signature fails."""


@dataclass(frozen=True)
class InitializeResult:
    ok: bool
    token: str | None
    url: str | None
    result: BkmResult | None


@dataclass
class BkmClient:
    endpoint: str
    merchant_id: str
    signer: BkmSigner
    verifier: BkmVerifier
    http: httpx.AsyncClient
    ts_zone: str = "Europe/Istanbul"

    def now_ts(self) -> str:
        return format_ts(datetime.now(UTC), self.ts_zone)

    async def _call(self, body: bytes, soap_action: str) -> bkm_soap.SoapCall:
        try:
            resp = await self.http.post(
                self.endpoint, content=body, headers={**SOAP_HEADERS, "SOAPAction": soap_action}
            )
        except httpx.HTTPError as exc:
            raise BkmUnavailable(f"BKM not reachable: {type(exc).__name__}") from None
        if resp.status_code >= 500 and b"Fault" not in resp.content:
            raise BkmUnavailable(f"BKM answered HTTP {resp.status_code}")
        try:
            call = bkm_soap.parse(resp.content)
        except bkm_soap.SoapError as exc:
            raise BkmAnswerInvalid(f"HTTP {resp.status_code}: {exc}") from None
        if call.fault is not None:
            raise BkmAnswerInvalid(f"SOAP fault: {call.fault}")
        return call

    async def initialize_payment(self, request: InitializePaymentRequest) -> InitializeResult:
        """Şekil 6 → Şekil 7. The answer's s = sign(t + url + ts) with BKM's key."""
        signed = await asyncio.to_thread(self.signer.sign, request)
        call = await self._call(bkm_soap.initialize_payment_xml(signed), "initializePayment")
        res = bkm_soap.parse_result(call)
        answer = InitializePaymentAnswer(
            t=call.fields.get("t"),
            url=call.fields.get("url"),
            ts=call.fields.get("ts"),
            s=call.fields.get("s"),
            res=res,
        )
        if res is not None and not res.ok:
            # A refusal carries no token to sign; its code and message say why.
            return InitializeResult(False, None, None, res)
        if not self.verifier.verify(answer):
            raise BkmAnswerInvalid("initializePayment answer signature does not verify")
        if not answer.t or not answer.url:
            raise BkmAnswerInvalid("initializePayment answer without token or url")
        return InitializeResult(True, answer.t, answer.url, res)

    async def query_payment_result(self, token: str) -> QueryPaymentResultAnswer:
        """İşlem Bilgileri Sorgulama: s = imza{mId, t, ts}; answer s = imza{t, success, ts}.

        The document says to check the answer with "kendi RSA public keyini"; BKM signs
        it, so kopru verifies it with BKM's pinned key like every other BKM message.
        """
        request = QueryPaymentResultRequest(mId=self.merchant_id, t=token, ts=self.now_ts())
        signed = await asyncio.to_thread(self.signer.sign, request)
        call = await self._call(bkm_soap.query_payment_result_xml(signed), "queryPaymentResult")
        answer = QueryPaymentResultAnswer(
            t=call.fields.get("t"),
            success=call.fields.get("success"),
            ts=call.fields.get("ts"),
            s=call.fields.get("s"),
        )
        if not self.verifier.verify(answer):
            raise BkmAnswerInvalid("QueryPaymentResult answer signature does not verify")
        if answer.t != token or answer.success not in ("true", "false"):
            raise BkmAnswerInvalid("QueryPaymentResult answer for another token or no boolean")
        return answer
