"""BKM Express SOAP envelopes: build with xml.etree, parse untrusted XML with defusedxml.

The shapes follow bkm-express-xml-integration.md: Şekil 6 (initializePayment request),
Şekil 7 (its answer), Şekil 8 / 9 (requestMerchInfo request and answer). The document
shows no XML for QueryPaymentResult ("İşlem Bilgileri Sorgulama" lists only the fields);
it is written the same way: ``queryPaymentResult`` / ``queryPaymentResultWSRequest``.

Parsing reads elements by local name (the samples mix prefixes and namespaces) and keeps
every value as the received text: present-but-empty is ``""``, absent or ``xsi:nil`` is
None (signed as ``null``, specs README "An element that is present but empty").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from schemas.bkm import (
    Bank,
    Bin,
    BkmResult,
    InitializePaymentRequest,
    Installment,
    QueryPaymentResultRequest,
    parse_amount,
    wire_text,
)

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_BKM = "http://www.bkmexpress.com.tr"  # Şekil 6
NS_MERCHANT_WS = "http://merchant.ws.expressbkm.com.tr/"  # Şekil 7-9
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_XML_BYTES = 256 * 1024  # a BKM message is a few kB; refuse anything far larger

ET.register_namespace("soapenv", NS_SOAP)
ET.register_namespace("bkm", NS_BKM)
ET.register_namespace("ws", NS_MERCHANT_WS)

Pairs = Iterable[tuple[str, str | None]]


class SoapError(ValueError):
    """The XML is not a SOAP envelope of the expected shape."""


@dataclass(frozen=True)
class SoapCall:
    """One parsed SOAP body: operation element, its wrapper, the wrapper's fields."""

    operation: str
    wrapper: str
    fields: dict[str, str | None]
    element: ET.Element = field(repr=False)
    fault: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.get(f"{{{NS_XSI}}}nil") == "true":
        return None
    return el.text or ""


def _add(parent: ET.Element, pairs: Pairs) -> None:
    for name, value in pairs:
        if value is None:
            continue  # absent: BKM reads null, and the signed text says "null"
        ET.SubElement(parent, name).text = value


def envelope(
    operation: str, wrapper: str, ns: str, build: Iterable[tuple[str, str | None]]
) -> ET.Element:
    root = ET.Element(f"{{{NS_SOAP}}}Envelope")
    ET.SubElement(root, f"{{{NS_SOAP}}}Header")
    body = ET.SubElement(root, f"{{{NS_SOAP}}}Body")
    op = ET.SubElement(body, f"{{{ns}}}{operation}")
    inner = ET.SubElement(op, wrapper if ns == NS_MERCHANT_WS else f"{{{ns}}}{wrapper}")
    _add(inner, build)
    return root


def to_bytes(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _wrapper(root: ET.Element) -> ET.Element:
    """The element inside <Body><operation>: the WSRequest / WSResponse wrapper."""
    body = next((c for c in root if _local(c.tag) == "Body"), None)
    if body is None or len(body) == 0:
        raise SoapError("no SOAP Body")
    return body[0]


# ------------------------------------------------------------------------- parsing


def parse(data: bytes) -> SoapCall:
    """Parse a SOAP envelope safely (no entities, no DTD, size-limited)."""
    if len(data) > MAX_XML_BYTES:
        raise SoapError(f"XML body over {MAX_XML_BYTES} bytes")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise SoapError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "Envelope":
        raise SoapError("root element is not a SOAP Envelope")
    op = _wrapper(root)
    if _local(op.tag) == "Fault":
        reason = _text(next((c for c in op if _local(c.tag) == "faultstring"), None))
        return SoapCall("Fault", "", {}, op, fault=reason or "SOAP fault")
    if len(op) == 0:
        raise SoapError(f"{_local(op.tag)} has no request/response element")
    inner = op[0]
    fields = {_local(c.tag): _text(c) for c in inner if len(c) == 0}
    return SoapCall(_local(op.tag), _local(inner.tag), fields, inner)


def child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if _local(c.tag) == name]


def parse_result(call: SoapCall) -> BkmResult | None:
    res = child(call.element, "res")
    if res is None:
        return None
    return BkmResult(
        resCode=_text(child(res, "resCode")) or "",
        resMsg=_text(child(res, "resMsg")),
        resDet=_text(child(res, "resDet")),
    )


# --------------------------------------------------------------- initializePayment


def _installment_pairs(inst: Installment) -> Pairs:
    return [
        ("nofInst", wire_text(inst.nofInst)),
        ("amountInst", wire_text(inst.amountInst)),
        ("cAmount", wire_text(inst.cAmount)),
        ("tAmount", wire_text(inst.tAmount)),
        ("cPaid1stInst", wire_text(inst.cPaid1stInst)),
        ("expInst", inst.expInst),
    ]


def initialize_payment_xml(req: InitializePaymentRequest) -> bytes:
    """Şekil 6: the signed request; amounts with a comma, booleans as true/false."""
    root = envelope(
        "initializePayment",
        "initializePaymentWSRequest",
        NS_BKM,
        [
            ("mId", req.mId),
            ("sUrl", req.sUrl),
            ("cUrl", req.cUrl),
            ("sAmount", wire_text(req.sAmount)),
            ("cAmount", wire_text(req.cAmount)),
        ],
    )
    inner = _wrapper(root)[0]
    opts = ET.SubElement(inner, "instOpts")
    for bank in req.instOpts:
        b = ET.SubElement(opts, "bank")
        _add(b, [("id", bank.id), ("name", bank.name), ("expBank", bank.expBank)])
        bins = ET.SubElement(b, "bins")
        for bn in bank.bins:
            bin_el = ET.SubElement(bins, "bin")
            ET.SubElement(bin_el, "value").text = bn.value
            insts = ET.SubElement(bin_el, "insts")
            for inst in bn.insts:
                _add(ET.SubElement(insts, "inst"), _installment_pairs(inst))
    _add(inner, [("ts", req.ts), ("s", req.s)])
    return to_bytes(root)


def _amount(text: str | None) -> Decimal | None:
    return None if text is None else parse_amount(text)


def read_initialize_payment(call: SoapCall) -> InitializePaymentRequest:
    """The sandbox's reading of Şekil 6 back into the model (amounts must be '105,99')."""
    f, el = call.fields, call.element
    banks = []
    for b in children(child(el, "instOpts"), "bank"):
        bins = []
        for bn in children(child(b, "bins"), "bin"):
            insts = [
                Installment(
                    nofInst=int(_text(child(i, "nofInst")) or "0"),
                    amountInst=_amount(_text(child(i, "amountInst"))) or Decimal(0),
                    cAmount=_amount(_text(child(i, "cAmount"))),
                    tAmount=_amount(_text(child(i, "tAmount"))) or Decimal(0),
                    cPaid1stInst=_text(child(i, "cPaid1stInst")) == "true"
                    if _text(child(i, "cPaid1stInst")) is not None
                    else None,
                    expInst=_text(child(i, "expInst")),
                )
                for i in children(child(bn, "insts"), "inst")
            ]
            bins.append(Bin(value=_text(child(bn, "value")) or "", insts=insts))
        banks.append(
            Bank(
                id=_text(child(b, "id")) or "",
                name=_text(child(b, "name")),
                expBank=_text(child(b, "expBank")),
                bins=bins,
            )
        )
    return InitializePaymentRequest(
        mId=f.get("mId") or "",
        sUrl=f.get("sUrl") or "",
        cUrl=f.get("cUrl") or "",
        sAmount=_amount(f.get("sAmount")) or Decimal(0),
        cAmount=_amount(f.get("cAmount")),
        instOpts=banks,
        ts=f.get("ts") or "",
        s=f.get("s"),
    )


# --------------------------------------------------------------- QueryPaymentResult


def query_payment_result_xml(req: QueryPaymentResultRequest) -> bytes:
    root = envelope(
        "queryPaymentResult",
        "queryPaymentResultWSRequest",
        NS_BKM,
        [("mId", req.mId), ("t", req.t), ("ts", req.ts), ("s", req.s)],
    )
    return to_bytes(root)


# ------------------------------------------------------------------- answers, faults


def answer_xml(operation: str, wrapper: str, pairs: Pairs, res: BkmResult | None) -> bytes:
    """An answer shaped like Şekil 7 / 9: fields, then res{resCode, resMsg, resDet}."""
    root = envelope(operation, wrapper, NS_MERCHANT_WS, pairs)
    if res is not None:
        inner = _wrapper(root)[0]
        r = ET.SubElement(inner, "res")
        ET.SubElement(r, "resCode").text = res.resCode
        ET.SubElement(r, "resMsg").text = res.resMsg or ""
        ET.SubElement(r, "resDet").text = res.resDet or ""
    return to_bytes(root)


def fault_xml(code: str, message: str) -> bytes:
    root = ET.Element(f"{{{NS_SOAP}}}Envelope")
    body = ET.SubElement(root, f"{{{NS_SOAP}}}Body")
    fault = ET.SubElement(body, f"{{{NS_SOAP}}}Fault")
    ET.SubElement(fault, "faultcode").text = code
    ET.SubElement(fault, "faultstring").text = message
    return to_bytes(root)
