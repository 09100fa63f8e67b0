"""requestMerchInfo: BKM asks the merchant for POS and MPI data (Şekil 8 / 9).

The request (t, bid, bName, cBin, nofInst, ts, s) is verified with BKM's key on the raw
received values; the answer (t, posUrl, posUid, posPwd, s3DAuth, mpiUrl, mpiUid, mpiPwd,
md, xid, s3DFDec, cIp, extra, ts, s) is signed with the merchant's key in that order
(Java sample under Şekil 9). The POS and MPI passwords come from secrets and appear only
in the SOAP answer, never in a log line or an event. Non-3D-Secure merchants send the
MPI fields empty (FAQ "3D Secure üyesi değilim").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, SecretStr

from schemas.bkm import (
    SIGNED_FIELDS,
    BkmResult,
    RequestMerchInfoAnswer,
    RequestMerchInfoRequest,
    format_ts,
    ts_within,
    wire_text,
)
from services.common.bkm import soap as bkm_soap
from services.common.bkm.signature import BkmSigner, BkmVerifier
from services.common.observability.logging import get_logger
from services.common.stores.payments import PaymentStore

log = get_logger(__name__)


class PosSettings(BaseModel):
    """The virtual POS and MPI data BKM needs to charge the card (requestMerchInfo)."""

    pos_url: str = ""
    pos_uid: str = ""
    pos_pwd: SecretStr = SecretStr("")
    s3d_auth: int = 0  # 0: no 3D Secure authentication
    mpi_url: str = ""
    mpi_uid: str = ""
    mpi_pwd: SecretStr = SecretStr("")
    s3d_f_dec: int = 0
    client_ip: str = ""
    extra: str = ""
    require_known_token: bool = True


@dataclass
class MerchInfoDeps:
    signer: BkmSigner
    verifier: BkmVerifier
    store: PaymentStore
    pos: PosSettings
    ts_tolerance_s: float = 300.0
    ts_zone: str = "Europe/Istanbul"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class SoapReply:
    status: int
    body: bytes


def _fault(status: int, message: str) -> SoapReply:
    return SoapReply(status, bkm_soap.fault_xml("soapenv:Client", message))


async def handle_merch_info(data: bytes, deps: MerchInfoDeps) -> SoapReply:
    try:
        call = bkm_soap.parse(data)
    except bkm_soap.SoapError as exc:
        return _fault(400, str(exc))
    if call.operation != "requestMerchInfo":
        return _fault(400, f"unknown operation {call.operation}")
    f = call.fields
    req = RequestMerchInfoRequest(
        t=f.get("t"),
        bid=f.get("bid"),
        bName=f.get("bName"),
        cBin=f.get("cBin"),
        nofInst=f.get("nofInst"),
        ts=f.get("ts"),
        s=f.get("s"),
    )
    if not deps.verifier.verify(req):
        log.warning("requestMerchInfo signature does not verify")
        return _fault(400, "signature does not verify with BKM's key")
    tolerance = timedelta(seconds=deps.ts_tolerance_s)
    if not ts_within(req.ts or "", deps.clock(), tolerance, deps.ts_zone):
        return _fault(400, "Request Not Synchronized")
    token = req.t or ""
    if deps.pos.require_known_token and await deps.store.get(token) is None:
        return _fault(404, "unknown payment token")
    pos = deps.pos
    answer = RequestMerchInfoAnswer(
        t=token,
        posUrl=pos.pos_url,
        posUid=pos.pos_uid,
        posPwd=pos.pos_pwd,
        s3DAuth=pos.s3d_auth,
        mpiUrl=pos.mpi_url,
        mpiUid=pos.mpi_uid,
        mpiPwd=pos.mpi_pwd,
        md="",
        xid="",
        s3DFDec=pos.s3d_f_dec,
        cIp=pos.client_ip,
        extra=pos.extra,
        ts=format_ts(deps.clock(), deps.ts_zone),
    )
    signed = await asyncio.to_thread(deps.signer.sign, answer)
    # The documented order (schemas/bkm.py, Java sample under Şekil 9), then the signature.
    order = [*SIGNED_FIELDS["requestMerchInfoAnswer"], "s"]
    pairs = [(str(name), wire_text(getattr(signed, str(name)))) for name in order]
    log.info("requestMerchInfo answered", bkm_t=token, bank=req.bid, installments=req.nofInst)
    body = bkm_soap.answer_xml(
        "requestMerchInfoResponse",
        "RequestMerchInfoWSResponse",
        pairs,
        BkmResult(resCode="0", resMsg="Success", resDet=""),
    )
    return SoapReply(200, body)
