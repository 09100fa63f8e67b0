"""The MKK MKS Online REST client (§3, §5.1, §6.1, §6.2): signs, sends, verifies, maps.

- one pooled httpx.AsyncClient per process, timeouts from settings;
- every report call: body = JWS compact serialization of the request's exact JSON
  bytes (§9.2), `Content-Type: text/plain`, `Authorization: Bearer`, `Sender` (FAQ 19);
- signing runs on the signer's executor (the signing pool), never on the event loop;
- every answer is verified with MKK's certificate before it is read; an answer that
  does not verify raises MkkUnverifiedAnswer (nothing unverified is acted on);
- /v1/auth is plain JSON both ways (§3.2.4 - §3.2.6);
- codes map through schemas/codes.py into MkkOutcome.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from schemas.mkk import (
    AUTH_PATH,
    BALANCE_REPORT_PATH,
    REPORT_CONTENT_PATH,
    REPORT_STATUS_PATH,
    AuthAnswer,
    AuthFailure,
    AuthRequest,
    BalanceReportAnswer,
    BalanceReportRequest,
    MkkAnswer,
    ReportContentError,
    ReportContentRequest,
    ReportStatusAnswer,
    ReportStatusRequest,
    WireRequest,
)
from services.common.mkk.call_metrics import counted, timed
from services.common.mkk.outcome import (
    MkkNotSent,
    MkkOutcome,
    MkkTransportError,
    MkkUnverifiedAnswer,
)
from services.common.mkk.settings import MkkApiSettings
from services.common.observability.logging import get_logger
from services.common.signing.jws import JwsError, JwsSigner, JwsVerifier

# No connection was made: the request did not leave (httpx raises these before sending).
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)

log = get_logger(__name__)


@dataclass(frozen=True)
class AuthResult:
    outcome: MkkOutcome
    token: str | None = None  # in clear: the caller encrypts it before it leaves memory


@dataclass
class ContentAnswer:
    """Either the zip stream (`response`) or MKK's error outcome."""

    outcome: MkkOutcome
    response: httpx.Response | None = None


def tls_verify(settings: MkkApiSettings) -> bool:
    """httpx's `verify` for the MKK base URL. A plain http:// URL (the sandbox, a local
    stub) has no TLS to verify: loading the CA bundle for it anyway cost the
    content-fetcher 1.2 MB resident (measured; 3.4 MB for the bundle, 2.2 of them
    OpenSSL's own set-up that any client context costs). The client sends only paths
    under its base URL and never follows redirects, so no https request goes out with it."""
    return settings.verify_tls and not settings.url().lower().startswith("http://")


class MkkClient:
    def __init__(
        self,
        settings: MkkApiSettings,
        signer: JwsSigner | None,
        verifier: JwsVerifier | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.verifier = verifier
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._http is None:
            s = self.settings
            self._http = httpx.AsyncClient(
                base_url=s.url(),
                timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
                limits=httpx.Limits(
                    max_connections=s.max_connections,
                    max_keepalive_connections=s.max_connections,
                ),
                verify=tls_verify(s),
                transport=self._transport,
            )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("MkkClient is not started")
        return self._http

    # ------------------------------------------------------------------ §3.2 token
    async def auth(self, req: AuthRequest) -> AuthResult:
        """POST /v1/auth, plain JSON (§3.2.4). The password is only in the body."""
        with timed(AUTH_PATH):
            try:
                resp = await self._client().post(
                    AUTH_PATH,
                    content=req.to_wire_json(),
                    headers={"Content-Type": "application/json"},
                )
            except NOT_SENT as exc:
                raise MkkNotSent(f"auth: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise MkkTransportError(f"auth: {type(exc).__name__}") from None
        ref = req.request_header.sender_reference
        try:
            data: Any = resp.json()
        except ValueError:
            raise MkkTransportError(f"auth: HTTP {resp.status_code}, body is not JSON") from None
        if resp.status_code == 200:
            try:
                answer = AuthAnswer.model_validate(data)
            except ValidationError:
                raise MkkTransportError("auth: malformed token answer") from None
            return AuthResult(
                counted(AUTH_PATH, MkkOutcome.from_code("0000", 200, sender_reference=ref)),
                token=answer.token.get_secret_value(),
            )
        try:
            failure = AuthFailure.model_validate(data)
        except ValidationError:
            raise MkkTransportError(f"auth: HTTP {resp.status_code}, unknown body") from None
        return AuthResult(
            counted(
                AUTH_PATH,
                MkkOutcome.from_code(
                    failure.error_code,
                    resp.status_code,
                    description=failure.error_message,
                    sender_reference=ref,
                ),
            )
        )

    # ------------------------------------------------------------ signed report calls
    async def _signed_body(self, req: WireRequest) -> str:
        if self.signer is None:
            raise RuntimeError("no signer configured")
        # The exact bytes (secrets revealed) are signed; sign_async runs on the pool.
        return await self.signer.sign_async(req.to_wire_json())

    def _headers(self, token: str, member: str) -> dict[str, str]:
        return {  # FAQ 19, §3
            "Authorization": f"Bearer {token}",
            "Sender": member,
            "Content-Type": "text/plain",
        }

    def _verify(self, raw: bytes) -> Any:
        if self.verifier is None:
            raise RuntimeError("no verifier configured")
        try:
            return self.verifier.verify_json(raw)
        except JwsError as exc:
            raise MkkUnverifiedAnswer(f"answer did not verify: {exc}") from None

    async def _post_signed(self, path: str, req: WireRequest, token: str, member: str) -> Any:
        body = await self._signed_body(req)
        with timed(path):
            try:
                resp = await self._client().post(
                    path, content=body, headers=self._headers(token, member)
                )
            except NOT_SENT as exc:
                raise MkkNotSent(f"{path}: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise MkkTransportError(f"{path}: {type(exc).__name__}") from None
        payload = self._verify(resp.content)
        return resp.status_code, payload

    @staticmethod
    def _outcome(status: int, answer: MkkAnswer, **extra: Any) -> MkkOutcome:
        head = answer.response_header
        return MkkOutcome.from_code(
            answer.code,
            status,
            description=answer.response.response_desc or None,
            message_id=head.message_id,
            sender_reference=head.sender_reference,
            **extra,
        )

    async def balance_report(self, req: BalanceReportRequest, token: str) -> MkkOutcome:
        """§5.1: 0000 with refId (valid 24 h), or a code."""
        member = req.request_header.sender_member
        status, payload = await self._post_signed(BALANCE_REPORT_PATH, req, token, member)
        try:
            answer = BalanceReportAnswer.model_validate(payload)
        except ValidationError:
            raise MkkUnverifiedAnswer("balance-report answer does not match §5.1.5") from None
        return counted(BALANCE_REPORT_PATH, self._outcome(status, answer, ref_id=answer.ref_id))

    async def report_status(self, req: ReportStatusRequest, token: str) -> MkkOutcome:
        """§6.1: RP020-RP023 pending, 0000 with fileNames, RP025 / RP026 / RP018."""
        member = req.request_header.sender_member
        status, payload = await self._post_signed(REPORT_STATUS_PATH, req, token, member)
        try:
            answer = ReportStatusAnswer.model_validate(payload)
        except ValidationError:
            raise MkkUnverifiedAnswer("status answer does not match §6.1.5") from None
        outcome = self._outcome(status, answer, ref_id=req.ref_id, file_names=answer.file_names)
        return counted(REPORT_STATUS_PATH, outcome)

    @asynccontextmanager
    async def report_content(
        self, req: ReportContentRequest, token: str
    ) -> AsyncIterator[ContentAnswer]:
        """§6.2: an octet-stream zip (streamed, not read into memory) or a signed error."""
        member = req.request_header.sender_member
        body = await self._signed_body(req)
        client = self._client()
        request = client.build_request(
            "POST", REPORT_CONTENT_PATH, content=body, headers=self._headers(token, member)
        )
        with timed(REPORT_CONTENT_PATH):
            try:
                resp = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise MkkTransportError(f"content: {type(exc).__name__}") from None
        try:
            ctype = resp.headers.get("content-type", "")
            if resp.status_code == 200 and ctype.startswith("application/octet-stream"):
                ok = MkkOutcome.from_code(
                    "0000", 200, sender_reference=req.request_header.sender_reference
                )
                yield ContentAnswer(counted(REPORT_CONTENT_PATH, ok), resp)
                return
            try:
                raw = await resp.aread()
            except httpx.HTTPError as exc:
                raise MkkTransportError(f"content: {type(exc).__name__}") from None
            payload = self._verify(raw)
            try:
                err = ReportContentError.model_validate(payload)
            except ValidationError:
                raise MkkUnverifiedAnswer("content error does not match §6.2.5") from None
            yield ContentAnswer(
                counted(
                    REPORT_CONTENT_PATH,
                    MkkOutcome.from_code(
                        err.code,
                        resp.status_code,
                        description=err.response_desc,
                        message_id=err.response_header.message_id,
                        sender_reference=err.response_header.sender_reference,
                        ref_id=req.ref_id,
                    ),
                )
            )
        finally:
            await resp.aclose()


def describe(outcome: MkkOutcome) -> str:
    """A log-safe one-line summary (no secret is ever part of an outcome)."""
    return json.dumps(
        {"code": outcome.code, "action": str(outcome.action), "http": outcome.http_status},
        ensure_ascii=False,
    )
