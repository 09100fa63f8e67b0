"""The pipeline every MKK call goes through, and the answers it gives.

Order of checks on a report call, each with the code MKK answers (FAQ 5, §7, §3.2.7):
service hours (OI004) → injected faults (OI003, OI031 without messageId, latency, drop)
→ Bearer token (OI006, HTTP 401) → Sender header (OI021) → JWS signature (OI016,
OI010, OI012) → schema (OI002, or SP001 for a missing field) → member and user rights
(RP043, RP039, RP040, RP041, RP048, MY04) → senderReference unique per member (RP045)
→ the business step.

Answers before the senderReference was accepted carry no messageId: the message
never reached MKS and its reference stays free (§5.1.2, §5.1.5). From there on every
answer has a messageId and the reference is burnt. So every injected fault that
answers without a messageId (OI003, the no-messageId fault's OI031, a drop "before")
strikes BEFORE the call is handled: no answer without a messageId ever follows a
state change. Only a drop "after" loses an answer MKS did give (with its messageId).
Business errors are HTTP 422 (§5.1.1). Every call is recorded for the admin API,
with no secret in the record.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from schemas.codes import description
from schemas.mkk import BalanceReportRequest, ReportContentRequest, ReportStatusRequest
from services.sandbox.mkk import hours, jws
from services.sandbox.mkk.auth import authenticate, check_token
from services.sandbox.mkk.business import balance_report, report_content, report_status
from services.sandbox.mkk.faults import Draw
from services.sandbox.mkk.outcome import Result
from services.sandbox.mkk.state import SandboxState

MODELS: dict[str, type[BaseModel]] = {
    "balance-report": BalanceReportRequest,
    "status": ReportStatusRequest,
    "content": ReportContentRequest,
}
FUNCTIONS: dict[str, tuple[str, ...]] = {  # §5.1.8, §6.1.8, §6.2.8
    "status": ("ASYNC_REPORT_STATUS_QUERY",),
    "content": ("ASYNC_REPORT_CONTENT_QUERY",),
}


class DropConnection(Exception):
    """Injected fault: the connection is cut mid-answer."""


class DroppedResponse(Response):
    """Starts an answer, promises more bytes than it sends, then fails: the server
    closes the connection and the client sees it cut (in-process: the exception)."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1024"), (b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"ey", "more_body": True})
        raise DropConnection("injected fault: connection dropped")


@dataclass
class Call:
    endpoint: str
    sender_header: str | None
    member: str | None = None
    sender: str | None = None
    reference: str | None = None
    token_user: str | None = None  # whose token the call carried (admin records)


def peek_header(raw: bytes) -> dict[str, str]:
    """requestHeader read without any check, only to address the answer and the log."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
        else:
            part = text.split(".")[1]
            data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        head = data.get("requestHeader", {})
        return {k: v for k, v in head.items() if isinstance(v, str)}
    except (ValueError, IndexError, AttributeError, UnicodeDecodeError):
        return {}


def _header(call: Call, message_id: str | None) -> dict[str, str]:
    head = {"senderReference": call.reference or "-", "receiverMember": call.member or "MKK"}
    if message_id is not None:
        head["messageId"] = message_id
    return head


def render(state: SandboxState, call: Call, result: Result) -> Response:
    if result.file is not None:
        return FileResponse(
            result.file, media_type="application/octet-stream", filename=result.file.name
        )
    code = result.code or "OI001"
    desc = "Başarılı" if code == "0000" else description(code)
    head = _header(call, result.message_id)
    payload: dict[str, Any]
    if call.endpoint == "content":  # §6.2.6: the code is not nested
        payload = {"responseHeader": head, "responseCode": code, "responseDesc": desc}
    else:
        payload = {"responseHeader": head, "response": {"responseCode": code}}
        payload["response"]["responseDesc"] = desc
        payload.update(result.extra)
    signed = jws.sign(payload, state.mkk_key, state.config.answer_alg)
    return Response(signed, result.status, media_type="text/plain")


def _schema_code(exc: ValidationError) -> str:
    return "SP001" if any(e["type"] == "missing" for e in exc.errors()) else "OI002"


def process(state: SandboxState, call: Call, request: Request, raw: bytes, draw: Draw) -> Result:
    if draw.token_reject:
        return Result(401, "OI006", fault="token_reject")
    token = check_token(state, request.headers.get("authorization"))
    if token is None:
        return Result(401, "OI006")
    call.token_user = token.username
    sender_header = call.sender_header
    if not sender_header or state.config.member(sender_header) is None:
        return Result(500, "OI021")
    if token.member != sender_header:
        return Result(401, "OI006")
    call.member = sender_header
    try:
        payload = jws.verify_request(raw, state.member_keys.get(sender_header))
    except jws.VerifyError as exc:
        return Result(500, exc.code)
    try:
        req = MODELS[call.endpoint].model_validate(payload, context={"today": state.today()})
    except ValidationError as exc:
        code = _schema_code(exc)
        return Result(422 if code == "SP001" else 500, code)
    head = req.request_header  # type: ignore[attr-defined]
    call.reference, call.sender = head.sender_reference, head.sender
    member = state.config.member(head.sender_member)
    if member is None:
        return Result(422, "RP043")
    user = next((u for u in member.users if u.username == head.sender), None)
    if user is None:
        return Result(422, "RP039")
    if user.username in state.locked:
        return Result(422, "RP040")
    if not user.active:
        return Result(422, "RP041")
    if isinstance(req, BalanceReportRequest):  # §5.1.8
        today = state.today().strftime("%Y%m%d")
        needed: tuple[str, ...] = (
            "RP013" if req.process_date == today else "RP166",
            "COMMON_CREATE_REPORT",
        )
    else:
        needed = FUNCTIONS[call.endpoint]
    if any(f not in user.functions for f in needed):
        return Result(422, "RP048")
    if any(f not in member.functions for f in needed):
        return Result(422, "MY04")
    if state.reference_used(member.code, head.sender_reference):
        return Result(422, "RP045")  # §9.2: the MF04 sample has no messageId
    message_id = state.next_message_id()
    state.burn_reference(member.code, head.sender_reference)
    if head.sender_member != sender_header:
        return Result(422, "RP036", message_id)
    if isinstance(req, BalanceReportRequest):
        return balance_report(state, member.code, req, message_id)
    if isinstance(req, ReportStatusRequest):
        return report_status(state, member.code, req, message_id)
    assert isinstance(req, ReportContentRequest)
    return report_content(state, member.code, req, message_id)


async def run_call(request: Request, endpoint: str) -> Response:
    state: SandboxState = request.app.state.sandbox
    raw = await request.body()
    peek = peek_header(raw)
    call = Call(endpoint, request.headers.get("sender"))
    call.member = call.sender_header or peek.get("senderMember")
    call.sender, call.reference = peek.get("sender"), peek.get("senderReference")
    result: Result
    if state.service_hours and not hours.is_open(endpoint, state.clock.now()):  # §8
        result = Result(503, "OI004", fault="hours")
        draw = Draw()
    else:
        draw = state.faults.draw(endpoint)
        if draw.latency_s:
            await asyncio.sleep(draw.latency_s)
        if draw.drop and state.faults.config.drop_phase == "before":
            _record(state, call, Result(0, None, fault="dropped"))
            return DroppedResponse()
        if draw.http500:
            result = Result(500, "OI003", fault="http500")
        elif endpoint == "auth":
            return _auth(state, call, raw, draw)
        elif draw.no_message_id:
            # §5.1.5: no messageId means the message failed before reaching MKS. So the
            # fault strikes BEFORE the call is handled: no report, no reference burnt,
            # nothing changed; the client may send the same reference again (§5.1.2).
            result = Result(500, "OI031", fault="no_message_id")
        else:
            result = process(state, call, request, raw, draw)
    if draw.drop:
        _record(state, call, result.with_fault("dropped"))
        return DroppedResponse()
    _record(state, call, result)
    if endpoint == "auth":
        return JSONResponse(_auth_failure_body(state, result.code), result.status)
    return render(state, call, result)


def _auth_failure_body(state: SandboxState, code: str | None) -> dict[str, str]:
    c = code or "OI003"
    return {
        "error_message": description(c),
        "transaction_id": state.next_message_id(),
        "error_code": c,
        "error_subcode": c,
    }


def _auth(state: SandboxState, call: Call, raw: bytes, draw: Draw) -> Response:
    outcome, req = authenticate(state, raw)
    if req is not None:
        call.member = req.request_header.sender_member
        call.sender = req.request_header.sender
        call.reference = req.request_header.sender_reference
    result = Result(outcome.status, outcome.code, outcome.message_id)
    if draw.drop:
        _record(state, call, result.with_fault("dropped"))
        return DroppedResponse()
    _record(state, call, result)
    return JSONResponse(outcome.body, outcome.status)


def _record(state: SandboxState, call: Call, result: Result) -> None:
    file: Path | None = result.file
    state.record(
        endpoint=call.endpoint,
        member=call.member,
        sender=call.sender,
        sender_reference=call.reference,
        http_status=result.status,
        response_code=result.code,
        message_id=result.message_id,
        has_message_id=result.message_id is not None,
        ref_id=result.ref_id,
        file_name=file.name if file is not None else result.file_name,
        fault=result.fault,
        token_user=call.token_user,
    )
