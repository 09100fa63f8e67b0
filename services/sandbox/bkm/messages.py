"""What the BKM sandbox sends: signed confirmation / cancel fields and their faults."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.bkm import CancelRedirect, ConfirmationPost, format_amount, format_ts
from services.common.bkm.signature import BkmSigner

# A card number that passes Luhn, a CVC and an expiry: with leak_card_data the sandbox
# puts them in posMessage (as a broken BKM would) to prove the merchant strips them.
TEST_PAN = "4111111111111111"
TEST_CVC = "737"
TEST_EXPIRY = "12/29"
TEST_HOLDER = "AYSE YILMAZ"


@dataclass(frozen=True)
class PayOptions:
    outcome: str = "success"  # success | cancel
    amount: Decimal = Decimal("100.00")
    reason: str = "user cancelled"
    tamper: bool = False  # change a signed value after signing
    stale_s: float = 0.0  # ts this many seconds in the past
    leak_card_data: bool = False


def pos_message(token: str, amount: Decimal, leak: bool) -> str:
    """Şekil 11: the POS answer as JSON (card data removed unless asked to leak)."""
    body: dict[str, object] = {
        "PosResponse": {
            "Host": {"AuthCode": "123456", "RRN": token[-12:], "RC": "00"},
            "Result": {"Code": "0", "Text": "", "ErrorMessage": ""},
            "TrnxID": f"trx-{token}",
            "TrnxType": "Sale",
            "Amount": format_amount(amount),
            "CustomData": "",
        }
    }
    if leak:
        body["PosResponse"] |= {  # type: ignore[operator]
            "Pan": TEST_PAN,
            "Cvc": TEST_CVC,
            "ExpiryDate": TEST_EXPIRY,
            "CardHolderName": TEST_HOLDER,
            "Note": f"card {TEST_PAN}",
        }
    return json.dumps(body, separators=(",", ":"))


def signed_fields(
    token: str, opts: PayOptions, signer: BkmSigner, zone: str, now: datetime | None = None
) -> dict[str, str]:
    """The form fields BKM posts: confirmation (success) or cancel, signed with BKM's key."""
    moment = (now or datetime.now(UTC)) - timedelta(seconds=opts.stale_s)
    ts = format_ts(moment, zone)
    xid, md = f"xid-{token}"[:40], f"md-{token}"[:40]
    fields: dict[str, str]
    if opts.outcome == "cancel":
        cancel = signer.sign(
            CancelRedirect(t=token, r=opts.reason, posRef=f"ref-{token}", xid=xid, md=md, ts=ts)
        )
        fields = {k: v for k, v in cancel.model_dump().items() if v is not None}
    else:
        post = signer.sign(
            ConfirmationPost(
                t=token,
                posMessage=pos_message(token, opts.amount, opts.leak_card_data),
                xid=xid,
                md=md,
                ts=ts,
            )
        )
        fields = {k: v for k, v in post.model_dump().items() if v is not None}
    if opts.tamper:
        fields["xid"] = fields["xid"] + "-tampered"
    return fields
