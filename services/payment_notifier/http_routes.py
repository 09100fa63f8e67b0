"""The payment-notifier's HTTP endpoints, served on the service's port next to
/healthz /readyz /metrics. Thin: read the request, call the decision, write the answer.

- POST /bkm/confirmation  BKM's confirmation post (form fields, "Confirmation URL")
- POST /bkm/success       the success redirect to sUrl (hidden form fields)
- GET  /bkm/cancel        the cancel redirect to cUrl (GET parameters; POST accepted too)
- POST /bkm/merchinfo     requestMerchInfo (SOAP)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.payment_notifier.confirmations import ConfirmationDeps, Source, handle_return
from services.payment_notifier.merch_info import MerchInfoDeps, handle_merch_info

MAX_BODY_BYTES = 64 * 1024
FORM = "application/x-www-form-urlencoded"


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
    """The received values exactly as sent (percent-decoded); a repeated field is refused."""
    fields: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in fields:
            raise BadRequest(400, f"field {key!r} is repeated")
        fields[key] = value
    return fields


async def _form(request: Request) -> dict[str, str]:
    if request.method == "GET":
        fields = _fields(request.url.query)
        # A base64 signature sent unescaped in a query string has its "+" read as a
        # space; base64 has no spaces, so putting them back changes nothing else.
        if "s" in fields:
            fields["s"] = fields["s"].replace(" ", "+")
        return fields
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM:
        raise BadRequest(415, f"send the fields as {FORM}")
    try:
        return _fields((await _body(request)).decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(400, "body is not UTF-8") from None


NOT_READY = JSONResponse({"error": "starting; try again"}, status_code=503)


def _return_endpoint(
    source: Source, provide: Callable[[], ConfirmationDeps | None]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        deps = provide()
        if deps is None:
            return NOT_READY
        try:
            fields = await _form(request)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        reply = await handle_return(fields, source, deps)
        headers = {"X-Kopru-Replay": "true"} if reply.replay else None
        return Response(
            reply.body, status_code=reply.status, media_type=reply.content_type, headers=headers
        )

    return endpoint


def payment_routes(
    confirm: Callable[[], ConfirmationDeps | None], merch: Callable[[], MerchInfoDeps | None]
) -> list[BaseRoute]:
    """The routes; deps are read per request (they exist once the service started)."""

    async def merch_info(request: Request) -> Response:
        deps = merch()
        if deps is None:
            return NOT_READY
        try:
            body = await _body(request)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        reply = await handle_merch_info(body, deps)
        return Response(reply.body, status_code=reply.status, media_type="text/xml")

    return [
        Route("/bkm/confirmation", _return_endpoint("confirmation", confirm), methods=["POST"]),
        Route("/bkm/success", _return_endpoint("success_redirect", confirm), methods=["POST"]),
        Route("/bkm/cancel", _return_endpoint("cancel_redirect", confirm), methods=["GET", "POST"]),
        Route("/bkm/merchinfo", merch_info, methods=["POST"]),
    ]
