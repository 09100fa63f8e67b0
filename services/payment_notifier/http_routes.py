"""The payment-notifier's HTTP endpoints, served on the service's port next to
/healthz /readyz /metrics. Thin: read the request, call the decision, write the answer.

- POST /bkm/confirmation  BKM's confirmation post (form fields, "Confirmation URL")
- POST /bkm/success       the success redirect to sUrl (hidden form fields)
- GET  /bkm/cancel        the cancel redirect to cUrl (GET parameters; POST accepted too)
- POST /bkm/merchinfo     requestMerchInfo (SOAP)
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from services.payment_notifier.confirmations import ConfirmationDeps, Source, handle_return
from services.payment_notifier.form_decode import unquote_plus
from services.payment_notifier.merch_info import MerchInfoDeps, handle_merch_info

MAX_BODY_BYTES = 64 * 1024
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class BadRequest(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, f"body over {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(413, f"body over {MAX_BODY_BYTES} bytes")
    return body


def _fields(text: str) -> dict[str, str]:
    """The received values exactly as sent (percent-decoded); a repeated field is refused.

    ``parse_qsl(text, keep_blank_values=True)`` in one pass: pairs split on "&", empty
    pairs skipped, a name without "=" has the value "", "+" is a space, %XX decoded as
    UTF-8 (invalid sequences replaced): form_decode.unquote_plus, urllib's reading, fast."""
    fields: dict[str, str] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key = unquote_plus(key)
        if key in fields:
            raise BadRequest(400, f"field {key!r} is repeated")
        fields[key] = unquote_plus(value)
    return fields


async def _form(request: Request) -> dict[str, str]:
    """GET parameters (the cancel redirect); POST bodies go through ``_posted``."""
    fields = _fields(request.url.query)
    # A base64 signature sent unescaped in a query string has its "+" read as a
    # space; base64 has no spaces, so putting them back changes nothing else.
    if "s" in fields:
        fields["s"] = fields["s"].replace(" ", "+")
    return fields


def _json(status: int, content: dict[str, str]) -> tuple[int, bytes]:
    return status, json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


NOT_READY = _json(503, {"error": "starting; try again"})
REPLAY_HEADER = (b"x-kopru-replay", b"true")


async def _posted(scope: Scope, receive: Receive) -> dict[str, str]:
    """The posted form's fields: content type, then size (declared, then read), UTF-8."""
    ctype = declared = None  # the first of each, as Starlette's Headers.get reads them
    for name, value in scope["headers"]:
        if name == b"content-type" and ctype is None:
            ctype = value
        elif name == b"content-length" and declared is None:
            declared = value
    ctype, declared = ctype or b"", declared or b""
    if ctype.split(b";")[0].strip().lower() != FORM.encode():
        raise BadRequest(415, f"send the fields as {FORM}")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, f"body over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(413, f"body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return _fields(b"".join(chunks).decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(400, "body is not UTF-8") from None


class ReturnEndpoint:
    """A plain ASGI endpoint (an instance, so Starlette's Route calls it as ASGI: no request
    or response objects on this hot path) with the same statuses, bodies and headers as a
    Starlette JSON response."""

    def __init__(self, source: Source, provide: Callable[[], ConfirmationDeps | None]) -> None:
        self.source = source
        self.provide = provide

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = self.provide()
        replay, ctype = False, JSON
        if deps is None:
            status, body = NOT_READY
        else:
            try:
                if scope["method"] == "GET":
                    fields = await _form(Request(scope, receive))
                else:
                    fields = await _posted(scope, receive)
            except BadRequest as exc:
                status, body = _json(exc.status, {"error": str(exc)})
            except ClientDisconnect:
                return
            else:
                reply = await handle_return(fields, self.source, deps)
                status, body, replay = reply.status, reply.body, reply.replay
                ctype = reply.content_type
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", ctype.encode())]
        if replay:
            headers.insert(0, REPLAY_HEADER)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def payment_routes(
    confirm: Callable[[], ConfirmationDeps | None], merch: Callable[[], MerchInfoDeps | None]
) -> list[BaseRoute]:
    """The routes; deps are read per request (they exist once the service started)."""

    async def merch_info(request: Request) -> Response:
        deps = merch()
        if deps is None:
            return Response(NOT_READY[1], status_code=NOT_READY[0], media_type=JSON)
        try:
            body = await _body(request)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        reply = await handle_merch_info(body, deps)
        return Response(reply.body, status_code=reply.status, media_type="text/xml")

    return [
        Route("/bkm/confirmation", ReturnEndpoint("confirmation", confirm), methods=["POST"]),
        Route("/bkm/success", ReturnEndpoint("success_redirect", confirm), methods=["POST"]),
        Route("/bkm/cancel", ReturnEndpoint("cancel_redirect", confirm), methods=["GET", "POST"]),
        Route("/bkm/merchinfo", merch_info, methods=["POST"]),
    ]
