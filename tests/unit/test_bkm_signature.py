"""BKM canonical strings (golden vectors spelled out by hand) and SHA256withRSA signatures."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError
from structlog.testing import capture_logs

from schemas.bkm import (
    SIGNED_FIELDS,
    Bank,
    Bin,
    CancelRedirect,
    ConfirmationPost,
    InitializePaymentAnswer,
    InitializePaymentRequest,
    Installment,
    QueryPaymentResultAnswer,
    QueryPaymentResultRequest,
    RedirectForm,
    RequestMerchInfoAnswer,
    RequestMerchInfoRequest,
    SuccessPost,
    format_amount,
    format_ts,
    parse_amount,
    parse_return,
    parse_ts,
    ts_within,
)
from services.common.bkm.settings import (
    BkmKeySettings,
    signer_from_settings,
    verifier_from_settings,
)
from services.common.bkm.signature import (
    BkmKeyError,
    BkmSignatureInvalid,
    BkmSigner,
    BkmVerifier,
    canonical_string,
    sign_text,
    verify_text,
)
from services.common.signing.certs import write_private_key
from tests.conftest import IN_CI

# Under CI=true a missing openssl fails the test instead of skipping it.
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None and not IN_CI, reason="no openssl CLI"
)
TS = "20110729-15:05:23"
D = Decimal


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def bkm_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def key_1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


def two_by_two_by_two() -> InitializePaymentRequest:
    """2 banks x 2 bins x 2 installments, a null expBank and cAmount, both booleans."""
    return InitializePaymentRequest(
        mId="7f85e133-3cd2-4821-9bf7-eb0bcb55cbb3",
        sUrl="https://magaza.example/odeme/basarili",
        cUrl="https://magaza.example/odeme/iptal",
        sAmount=D("78.99"),
        cAmount=D("5"),
        instOpts=[
            Bank(
                id="0046",
                name="Akbank",
                expBank="Fırsatları kaçırmayın!",
                bins=[
                    Bin(
                        value="435508",
                        insts=[
                            Installment(
                                nofInst=1,
                                amountInst=D("80.99"),
                                cAmount=D("5.00"),
                                tAmount=D("80.99"),
                                cPaid1stInst=True,
                                expInst="Peşin ödemelerde 3 TL indirim",
                            ),
                            Installment(
                                nofInst=2,
                                amountInst=D("42"),
                                cAmount=D("5"),
                                tAmount=D("84"),
                                cPaid1stInst=False,
                                expInst="",  # <expInst/>: present but empty
                            ),
                        ],
                    ),
                    Bin(
                        value="543771",
                        insts=[
                            Installment(
                                nofInst=1,
                                amountInst=D("80.99"),
                                cAmount=D("5.00"),
                                tAmount=D("80.99"),
                                cPaid1stInst=True,
                                expInst=None,  # absent: null
                            ),
                            Installment(
                                nofInst=3,
                                amountInst=D("28.33"),
                                cAmount=None,  # absent: null
                                tAmount=D("84.99"),
                                cPaid1stInst=False,
                                expInst="3 taksit",
                            ),
                        ],
                    ),
                ],
            ),
            Bank(
                id="0062",
                name="Garanti",
                expBank=None,  # absent: null
                bins=[
                    Bin(
                        value="409070",
                        insts=[
                            Installment(
                                nofInst=1,
                                amountInst=D("78.99"),
                                cAmount=D("0"),
                                tAmount=D("78.99"),
                                cPaid1stInst=False,
                                expInst="",
                            ),
                            Installment(
                                nofInst=6,
                                amountInst=D("14.00"),
                                cAmount=D("1105.5"),
                                tAmount=D("1084.00"),
                                cPaid1stInst=True,
                                expInst="6 taksit",
                            ),
                        ],
                    ),
                    Bin(
                        value="554960",
                        insts=[
                            Installment(
                                nofInst=1,
                                amountInst=D("78.99"),
                                cAmount=D("0.00"),
                                tAmount=D("78.99"),
                                cPaid1stInst=True,
                                expInst="",
                            ),
                            Installment(
                                nofInst=2,
                                amountInst=D("40.00"),
                                cAmount=D("1.50"),
                                tAmount=D("80.00"),
                                cPaid1stInst=False,
                                expInst="2 taksit",
                            ),
                        ],
                    ),
                ],
            ),
        ],
        ts=TS,
    )


GOLDEN_2X2X2 = (
    "7f85e133-3cd2-4821-9bf7-eb0bcb55cbb3"
    "https://magaza.example/odeme/basarili"
    "https://magaza.example/odeme/iptal"
    "78,99"
    "5,00"
    # bank 0046
    "0046" "Akbank" "Fırsatları kaçırmayın!"
    "435508"
    "1" "80,99" "5,00" "80,99" "true" "Peşin ödemelerde 3 TL indirim"
    "2" "42,00" "5,00" "84,00" "false" ""
    "543771"
    "1" "80,99" "5,00" "80,99" "true" "null"
    "3" "28,33" "null" "84,99" "false" "3 taksit"
    # bank 0062
    "0062" "Garanti" "null"
    "409070"
    "1" "78,99" "0,00" "78,99" "false" ""
    "6" "14,00" "1105,50" "1084,00" "true" "6 taksit"
    "554960"
    "1" "78,99" "0,00" "78,99" "true" ""
    "2" "40,00" "1,50" "80,00" "false" "2 taksit"
    "20110729-15:05:23"
)  # fmt: skip


def test_golden_initialize_payment_2x2x2() -> None:
    assert canonical_string(two_by_two_by_two()) == GOLDEN_2X2X2


def test_golden_initialize_payment_document_sample() -> None:
    """Şekil 6 of the BKM document, with its <expInst/> as the empty string."""
    sample = InitializePaymentRequest(
        mId="7f85e133-3cd2-4821-9bf7-eb0bcb55cbb3",
        sUrl="http://.../odemeBasarili.jsp",
        cUrl="http://.../odemeBasarisiz.jsp",
        sAmount=D("78.99"),
        cAmount=D("5.00"),
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
                                nofInst=1,
                                amountInst=D("80.99"),
                                cAmount=D("5.00"),
                                tAmount=D("80.99"),
                                cPaid1stInst=True,
                                expInst="Pesin ödemelerde 3 TL indirim",
                            ),
                            Installment(
                                nofInst=2,
                                amountInst=D("42.00"),
                                cAmount=D("5.00"),
                                tAmount=D("84.00"),
                                cPaid1stInst=False,
                                expInst="",
                            ),
                        ],
                    )
                ],
            )
        ],
        ts="20110729-15:05:23",
    )
    assert canonical_string(sample) == (
        "7f85e133-3cd2-4821-9bf7-eb0bcb55cbb3http://.../odemeBasarili.jsp"
        "http://.../odemeBasarisiz.jsp78,995,009999BankaIsmiBanka firsatlarini kaçirmayin!"
        "444411180,995,0080,99truePesin ödemelerde 3 TL indirim242,005,0084,00false"
        "20110729-15:05:23"
    )


def test_other_messages_canonical_order() -> None:
    assert (
        canonical_string(InitializePaymentAnswer(t="186005784745383", url="http://u", ts=TS))
        == "186005784745383http://u" + TS
    )
    assert canonical_string(RedirectForm(t="186005784745383", ts=TS)) == "186005784745383" + TS
    assert (
        canonical_string(
            RequestMerchInfoRequest(
                t="186005784745383", bid="123", bName="BankaIsmi", cBin="458652", nofInst="2", ts=TS
            )
        )
        == "186005784745383123BankaIsmi4586522" + TS
    )
    answer = RequestMerchInfoAnswer(
        t="186005784745383",
        posUrl="https://posUrl.jsp",
        posUid="posUsername",
        posPwd=SecretStr("posPassword"),
        s3DAuth=0,
        mpiUrl="",  # no 3D Secure: sent empty (FAQ), signed empty
        mpiUid="",
        mpiPwd=SecretStr(""),
        md=None,
        xid=None,
        s3DFDec=0,
        cIp="88.247.126.211",
        extra='{"posno":"P000007","xcip":"EDF2556SA"}',
        ts=TS,
    )
    assert canonical_string(answer) == (
        "186005784745383https://posUrl.jspposUsernameposPassword0nullnull0"
        '88.247.126.211{"posno":"P000007","xcip":"EDF2556SA"}' + TS
    )
    assert "posPassword" not in repr(answer)  # the POS password never reaches a log line
    assert canonical_string(QueryPaymentResultRequest(mId="M1", t="T1", ts=TS)) == "M1T1" + TS
    assert (
        canonical_string(QueryPaymentResultAnswer(t="T1", success="true", ts=TS)) == "T1true" + TS
    )


def test_success_confirmation_and_cancel_fields() -> None:
    form = {
        "t": "T1",
        "posMessage": '{"PosResponse":{"Result":{"Code":"0","Text":""}}}',
        "xid": "",
        "md": "23456",
        "ts": TS,
        "s": "sig",
        "pData": "p",
    }
    success = parse_return(form)
    assert isinstance(success, SuccessPost)
    assert (
        canonical_string(success) == 'T1{"PosResponse":{"Result":{"Code":"0","Text":""}}}23456' + TS
    )
    confirmation = parse_return(form, confirmation=True)
    assert isinstance(confirmation, ConfirmationPost)
    assert canonical_string(confirmation) == canonical_string(success)
    no_md = {k: v for k, v in form.items() if k != "md"}
    assert canonical_string(parse_return(no_md)).endswith("null" + TS)

    cancel = parse_return({"t": "T1", "r": "user", "posRef": "PR9", "md": "m", "ts": TS})
    assert isinstance(cancel, CancelRedirect)
    assert canonical_string(cancel) == "T1PR9nullm" + TS  # xid absent: null


def test_field_lists_are_data() -> None:
    assert SIGNED_FIELDS["queryPaymentResult"] == ("mId", "t", "ts")
    assert SIGNED_FIELDS["queryPaymentResultAnswer"] == ("t", "success", "ts")
    assert SIGNED_FIELDS["success"] == ("t", "posMessage", "xid", "md", "ts")
    assert SIGNED_FIELDS["cancel"] == ("t", "posRef", "xid", "md", "ts")


# --------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "text"),
    [("105.99", "105,99"), ("85", "85,00"), ("0", "0,00"), ("1234567.5", "1234567,50")],
)
def test_amounts(value: str, text: str) -> None:
    assert format_amount(Decimal(value)) == text
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("bad", ["1.005", "-1", "NaN", "Infinity"])
def test_amounts_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        format_amount(Decimal(bad))


@pytest.mark.parametrize("bad", ["105.99", "105,9", "1.050,00", "", "10,999"])
def test_amount_text_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_ts_in_istanbul_by_default_and_configurable() -> None:
    moment = datetime(2011, 7, 29, 12, 5, 23, tzinfo=UTC)
    assert format_ts(moment) == "20110729-15:05:23"  # UTC+3
    assert format_ts(moment, "UTC") == "20110729-12:05:23"
    assert parse_ts("20110729-15:05:23") == moment
    assert parse_ts("20110729-12:05:23", "UTC") == moment
    with pytest.raises(ValueError):
        format_ts(datetime(2011, 7, 29))  # naive
    with pytest.raises(ValueError):
        parse_ts("2011-07-29T15:05:23")
    assert ts_within("20110729-15:05:40", moment, timedelta(seconds=30))
    assert not ts_within("20110729-15:06:00", moment, timedelta(seconds=30))
    assert not ts_within("garbage", moment, timedelta(seconds=30))


# --------------------------------------------------------------------- signatures


def test_sign_and_verify_round_trip(merchant_key: rsa.RSAPrivateKey) -> None:
    signed = BkmSigner(merchant_key).sign(two_by_two_by_two())
    assert signed.s and len(base64.b64decode(signed.s)) == 256
    verifier = BkmVerifier(merchant_key.public_key())
    assert verifier.verify(signed)
    tampered = signed.model_copy(update={"sAmount": D("1.00")})
    assert not verifier.verify(tampered)
    with pytest.raises(BkmSignatureInvalid):
        verifier.require(tampered)


def test_received_values_verified_raw(bkm_key: rsa.RSAPrivateKey) -> None:
    """BKM signed the strings it sent; they are checked as received, not reformatted."""
    ts = "20260101-10:00:00"
    s = sign_text("186005784745383123BankaIsmi45865202" + ts, bkm_key)
    request = RequestMerchInfoRequest.model_validate(
        {"t": "186005784745383", "bid": "123", "bName": "BankaIsmi", "cBin": "458652",
         "nofInst": "02", "ts": ts, "s": s}
    )  # fmt: skip
    verifier = BkmVerifier(bkm_key.public_key())
    assert verifier.verify(request)
    assert not verifier.verify(request.model_copy(update={"nofInst": "2"}))

    answer_s = sign_text("T1true" + ts, bkm_key)
    answer = QueryPaymentResultAnswer(t="T1", success="true", ts=ts, s=answer_s)
    assert verifier.verify(answer) and answer.succeeded
    assert not verifier.verify(answer.model_copy(update={"success": "false"}))
    assert not verifier.verify(answer.model_copy(update={"success": "1"}))


@pytest.mark.parametrize("sig", [None, "", "!!!not base64!!!", "AAAA", "QUJD" * 100])
def test_verify_fails_closed(bkm_key: rsa.RSAPrivateKey, sig: str | None) -> None:
    msg = QueryPaymentResultAnswer(t="T1", success="true", ts=TS, s=sig)
    assert BkmVerifier(bkm_key.public_key()).verify(msg) is False


def test_wrong_key_fails(merchant_key: rsa.RSAPrivateKey, bkm_key: rsa.RSAPrivateKey) -> None:
    signed = BkmSigner(merchant_key).sign(QueryPaymentResultRequest(mId="M", t="T", ts=TS))
    assert BkmVerifier(merchant_key.public_key()).verify(signed)
    assert not BkmVerifier(bkm_key.public_key()).verify(signed)
    assert not verify_text("M" + "T" + TS, signed.s, bkm_key.public_key())


def test_key_sizes(key_1024: rsa.RSAPrivateKey) -> None:
    with capture_logs() as logs:
        signer = BkmSigner(key_1024)
    assert any(e["event"] == "bkm_key_1024_bit" and e["log_level"] == "warning" for e in logs)
    signed = signer.sign(RedirectForm(t="T", ts=TS))
    assert BkmVerifier(key_1024.public_key()).verify(signed)
    big = rsa.generate_private_key(65537, 3072)
    with pytest.raises(BkmKeyError):
        BkmSigner(big)
    with pytest.raises(BkmKeyError):
        BkmVerifier(big.public_key())


# ------------------------------------------------------------------ openssl interop


def _pub_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _openssl_verify(tmp: Path, key: rsa.RSAPrivateKey, text: str, sig_b64: str) -> bool:
    (tmp / "pub.pem").write_bytes(_pub_pem(key))
    (tmp / "data").write_bytes(text.encode("utf-8"))
    (tmp / "sig").write_bytes(base64.b64decode(sig_b64))
    run = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp / "pub.pem"),
         "-signature", str(tmp / "sig"), str(tmp / "data")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return run.returncode == 0 and "Verified OK" in run.stdout


@needs_openssl
@pytest.mark.parametrize("bits", [2048, 1024])
def test_openssl_verifies_golden_signature(
    tmp_path: Path, merchant_key: rsa.RSAPrivateKey, key_1024: rsa.RSAPrivateKey, bits: int
) -> None:
    key = merchant_key if bits == 2048 else key_1024
    signed = BkmSigner(key).sign(two_by_two_by_two())
    assert signed.s is not None
    assert _openssl_verify(tmp_path, key, GOLDEN_2X2X2, signed.s)
    assert not _openssl_verify(tmp_path, key, GOLDEN_2X2X2.replace("null", "", 1), signed.s)


@needs_openssl
def test_our_verifier_accepts_openssl_signature(tmp_path: Path, bkm_key: rsa.RSAPrivateKey) -> None:
    (tmp_path / "key.pem").write_bytes(
        bkm_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    text = 'T1{"PosResponse":{"Result":{"Code":"0"}}}XIDMD' + TS
    (tmp_path / "data").write_bytes(text.encode())
    subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "sig"), str(tmp_path / "data")],
        check=True,
    )  # fmt: skip
    sig = base64.b64encode((tmp_path / "sig").read_bytes()).decode()
    post = SuccessPost(
        t="T1", posMessage='{"PosResponse":{"Result":{"Code":"0"}}}', xid="XID", md="MD",
        ts=TS, s=sig,
    )  # fmt: skip
    assert BkmVerifier(bkm_key.public_key()).verify(post)


def test_from_settings(
    tmp_path: Path, merchant_key: rsa.RSAPrivateKey, bkm_key: rsa.RSAPrivateKey
) -> None:

    write_private_key(tmp_path / "merchant.pem", merchant_key, b"pw")
    (tmp_path / "bkm.pub").write_bytes(_pub_pem(bkm_key))
    settings = BkmKeySettings(
        merchant_id="m",
        private_key_file=tmp_path / "merchant.pem",
        private_key_passphrase=SecretStr("pw"),
        bkm_public_key_file=tmp_path / "bkm.pub",
    )
    signed = signer_from_settings(settings).sign(RedirectForm(t="T", ts=TS))
    assert BkmVerifier(merchant_key.public_key()).verify(signed)
    from_bkm = QueryPaymentResultAnswer(
        t="T", success="false", ts=TS, s=sign_text("Tfalse" + TS, bkm_key)
    )
    assert verifier_from_settings(settings).verify(from_bkm)
    with pytest.raises(ValidationError, match="private_key_file"):
        BkmKeySettings(merchant_id="m", bkm_public_key_file=tmp_path / "bkm.pub")
    with pytest.raises(ValidationError, match=r"merchant's private key"):
        BkmKeySettings(
            merchant_id="m",
            private_key_file=tmp_path / "merchant.pem",
            private_key_passphrase=SecretStr("wrong"),
            bkm_public_key_file=tmp_path / "bkm.pub",
        )
