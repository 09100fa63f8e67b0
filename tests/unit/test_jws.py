"""MKK JWS sign/verify (§3, §9.2): round trip, tampering, pinned algorithms, interop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pydantic import BaseModel, SecretStr

from services.common.signing.certs import create_self_signed, write_certificate, write_private_key
from services.common.signing.jws import (
    JwsAlgorithmNotAllowedError,
    JwsError,
    JwsHeaderInvalidError,
    JwsHeaderNotJsonError,
    JwsKeyError,
    JwsMalformedError,
    JwsPayloadNotJsonError,
    JwsSignatureInvalidError,
    JwsSigner,
    JwsVerifier,
    parse_compact,
    signer_from_settings,
    verifier_from_settings,
)
from services.common.signing.settings import MkkSigningSettings
from tests.conftest import IN_CI

OPENSSL = shutil.which("openssl")
# Under CI=true a missing openssl fails the test instead of skipping it.
needs_openssl = pytest.mark.skipif(
    OPENSSL is None and not IN_CI, reason="openssl CLI not installed"
)

# §9.2 "REQUEST - Python" payload and "DÖNEN JWS RESPONSE", joined from the guide's
# wrapped lines (the hyphens at line ends are base64url characters, not wrapping).
SAMPLE_REQUEST_JWS = (
    "eyJhbGciOiJSUzI1NiJ9.ew0KICAicmVxdWVzdEhlYWRlciI6IHsNCiAgICAic2VuZGVyUmVmZXJlbmNlIj"
    "ogIk1FX1RFU1RfWUZfMTIxIiwNCiAgICAic2VuZGVyTWVtYmVyIjogIlRJQiIsDQogICAgInNlbmRlciI6"
    "ICJUSUI5OTEiDQogIH0sDQogICJpc3N1ZXJNZW1iZXJDb2RlIjogIlRSSVNQIiwNCiAgInByb2Nlc3NEYXRl"
    "IjogIjIwMjMwNjA2IiwNCiAgIm9wU3RhdCI6IktPIg0KfQ.D_E32KzX8BHbmr8At99znYScvfjkgbg5N_LD8"
    "CAP2GE7hb4gKPH8Kko2V4551RDxFZ-4Es7-5lNo4i8fL-JITCUXiEJnE_qYaUZcaugjuWGX6vpJa5mwLHYaV"
    "L8Vj6wREnf9g_hOCyqIJ2sXq3KUIj234adoFP1_bF68Esp7E9BhMSPm6gVX0-CU8tSOGwUHoYHFey-H2Jgak"
    "O9gSoS58EKgkedeIdQNpV0unsQzvm5iBZtMKI078mS6U8KGr8Mpw2SYLhzvqGzg7yMsaKriuy3gBUIRWe73_"
    "OeF85Yw89d2qvl7d7BxTma94MzBjKZtpJ5OZ2Z7iaUx0-RGKIKzpg"
)
SAMPLE_ANSWER_JWS = (
    "eyJhbGciOiJSUzI1NiJ9.eyJtZnVuZFRyYWRlRGV0YWlscyI6e30sInJlc3BvbnNlIjp7InJlc3BvbnNlQ29kZ"
    "SI6Ik1GMDQiLCJyZXNwb25zZURlc2MiOiJNRjA0OiBNZXNhasSxIEfDtm5kZXJlbiBSZWZlcmFuc8SxIMOceW"
    "UgYmF6xLFuZGEgLXVuaXF1ZS0gb2xtYWzEsWTEsXIuIn0sInJlc3BvbnNlSGVhZGVyIjp7InJlY2VpdmVyTWV"
    "tYmVyIjoiTUtLIiwic2VuZGVyUmVmZXJlbmNlIjoiTUVfVEVTVF9ZRl8xMjEifX0.Y8-fXv7eU9QZkQvd49dM"
    "pAV-kwF36oZF-SWrTmvnE-tG6633Ufb0bzEG9i3-Q3PUNYMqc7adtaMzQOHhJbjaRXWvyR5iKLjgGv4E7q2wb"
    "f-Sg3qsYTdRUdOqE99JiITDiIbx6Bi5yDtwsf0H0ziNkPZUZWoXPAOERpuSofaMJFXGKdpGE5j5hmjnXMmx7J"
    "y2nQMdFjMJqEaailfDzGNnzCyD7X8H5w7ASwz4yxX4r5lEy8O6CusMYsQywyaFSpqcZqJt4U98hy_iXY_3z4y"
    "ooFemTQaVufufL3FH75CNKv4XLjBA9E9qSj1pqK8q2_B4k8U2PbFdShH9bGMAMBOpkA"
)
# The body MKK signed in §9.2, as the bytes the member sent (CRLF, spaces, "opStat":"KO").
SAMPLE_REQUEST_PAYLOAD = (
    b'{\r\n  "requestHeader": {\r\n    "senderReference": "ME_TEST_YF_121",\r\n'
    b'    "senderMember": "TIB",\r\n    "sender": "TIB991"\r\n  },\r\n'
    b'  "issuerMemberCode": "TRISP",\r\n  "processDate": "20230606",\r\n'
    b'  "opStat":"KO"\r\n}'
)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 4096)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def signer(key: rsa.RSAPrivateKey) -> JwsSigner:
    return JwsSigner(key)


@pytest.fixture(scope="module")
def verifier(key: rsa.RSAPrivateKey) -> JwsVerifier:
    return JwsVerifier(key.public_key())


PAYLOAD = json.dumps(
    {"requestHeader": {"senderReference": "R1", "senderMember": "TIB", "sender": "TIB991"}},
    separators=(",", ":"),
).encode()


# ---------------------------------------------------------------------- round trip


def test_small_or_non_rsa_keys_refused() -> None:
    small = rsa.generate_private_key(65537, 1024)
    with pytest.raises(JwsKeyError):
        JwsSigner(small)
    with pytest.raises(JwsKeyError):
        JwsVerifier(small.public_key())
    with pytest.raises(JwsKeyError):
        JwsVerifier(ec.generate_private_key(ec.SECP256R1()).public_key())  # type: ignore[arg-type]


def test_round_trip_returns_exact_payload_bytes(signer: JwsSigner, verifier: JwsVerifier) -> None:
    token = signer.sign(SAMPLE_REQUEST_PAYLOAD)
    head, _, _ = token.split(".")
    assert unb64u(head) == b'{"alg":"RS256"}'  # §9.2 header, no kid by default
    assert verifier.verify(token) == SAMPLE_REQUEST_PAYLOAD  # CRLF and spacing untouched
    assert verifier.verify(token.encode() + b"\r\n") == SAMPLE_REQUEST_PAYLOAD


def test_verify_json_and_payload_not_json(signer: JwsSigner, verifier: JwsVerifier) -> None:
    assert verifier.verify_json(signer.sign(PAYLOAD))["requestHeader"]["sender"] == "TIB991"
    with pytest.raises(JwsPayloadNotJsonError, match="payload not JSON"):
        verifier.verify_json(signer.sign(b"<xml/>"))


def test_sign_model_signs_the_bytes_it_returns(signer: JwsSigner, verifier: JwsVerifier) -> None:
    class Req(BaseModel):
        senderReference: str
        note: str | None = None
        title: str

    body, token = signer.sign_model(Req(senderReference="R1", title="Kayıt Kuruluşu"))
    assert verifier.verify(token) == body
    assert json.loads(body) == {"senderReference": "R1", "title": "Kayıt Kuruluşu"}


def test_kid_only_when_asked(key: rsa.RSAPrivateKey, verifier: JwsVerifier) -> None:
    token = JwsSigner(key, kid="TIB-2026").sign(PAYLOAD)
    assert json.loads(unb64u(token.split(".")[0])) == {"alg": "RS256", "kid": "TIB-2026"}
    assert verifier.verify(token) == PAYLOAD


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
def test_stronger_algorithms_selectable(key: rsa.RSAPrivateKey, alg: str) -> None:
    token = JwsSigner(key, alg).sign(PAYLOAD)
    assert json.loads(unb64u(token.split(".")[0])) == {"alg": alg}
    assert JwsVerifier(key.public_key(), [alg]).verify(token) == PAYLOAD
    with pytest.raises(JwsAlgorithmNotAllowedError):
        JwsVerifier(key.public_key(), ["RS256"]).verify(token)


# ------------------------------------------- MKK's answers: RS256, RS384, RS512 by default


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_mkk_answers_rs256_384_512_accepted_by_default(
    key: rsa.RSAPrivateKey, tmp_path: Path, alg: str
) -> None:
    """§3 "RSA SHA-256 veya üstü": any of the three verifies with MKK's certificate
    without configuring anything, through the verifier the services build."""
    _, cert = create_self_signed("Merkezi Kayıt Kuruluşu A.Ş.", "TR", key=key)
    write_certificate(tmp_path, "mkk", cert)
    defaults = verifier_from_settings(MkkSigningSettings(mkk_certificate_file=tmp_path / "mkk.pem"))
    token = JwsSigner(key, alg).sign(PAYLOAD)
    assert defaults.verify(token) == PAYLOAD
    assert JwsVerifier(key.public_key()).verify(token) == PAYLOAD


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_mkk_answers_signed_by_another_key_refused_by_default(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, alg: str
) -> None:
    with pytest.raises(JwsSignatureInvalidError):
        JwsVerifier(key.public_key()).verify(JwsSigner(other_key, alg).sign(PAYLOAD))


@pytest.mark.parametrize(
    ("alg", "digest"),
    [("HS256", "sha256"), ("HS384", "sha384"), ("HS512", "sha512")],
)
def test_mkk_answers_hs_refused_by_default(key: rsa.RSAPrivateKey, alg: str, digest: str) -> None:
    """Algorithm confusion against the default verifier: HMAC keyed with MKK's public key."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = b64u(json.dumps({"alg": alg}).encode()) + f".{b64u(PAYLOAD)}"
    mac = hmac.new(pem, signing_input.encode(), digest).digest()
    with pytest.raises(JwsAlgorithmNotAllowedError, match=alg):
        JwsVerifier(key.public_key()).verify(f"{signing_input}.{b64u(mac)}")


def test_mkk_answers_none_refused_by_default(key: rsa.RSAPrivateKey) -> None:
    for head in (b'{"alg":"none"}', b'{"alg":"None"}', b'{"alg":"NONE"}'):
        with pytest.raises(JwsAlgorithmNotAllowedError):
            JwsVerifier(key.public_key()).verify(f"{b64u(head)}.{b64u(PAYLOAD)}.AAAA")


def test_default_answer_algorithms_are_the_three_rsa_pkcs1(key: rsa.RSAPrivateKey) -> None:
    assert MkkSigningSettings().algorithms == ["RS256", "RS384", "RS512"]
    assert JwsVerifier(key.public_key()).algorithms == {"RS256", "RS384", "RS512"}
    with pytest.raises(JwsAlgorithmNotAllowedError):  # PS* only when configured
        JwsVerifier(key.public_key()).verify(JwsSigner(key, "PS256").sign(PAYLOAD))


def test_verifier_accepts_certificate(key: rsa.RSAPrivateKey, signer: JwsSigner) -> None:
    _, cert = create_self_signed("Merkezi Kayıt Kuruluşu A.Ş.", "TR", key=key)
    assert isinstance(cert, x509.Certificate)
    assert JwsVerifier(cert).verify(signer.sign(PAYLOAD)) == PAYLOAD


# ------------------------------------------------------------------------ tampering


def test_tampered_payload_rejected(signer: JwsSigner, verifier: JwsVerifier) -> None:
    head, _, sig = signer.sign(PAYLOAD).split(".")
    forged = PAYLOAD.replace(b"R1", b"R2")
    with pytest.raises(JwsSignatureInvalidError, match="signature invalid"):
        verifier.verify(f"{head}.{b64u(forged)}.{sig}")


def test_tampered_header_rejected(signer: JwsSigner, verifier: JwsVerifier) -> None:
    _, body, sig = signer.sign(PAYLOAD).split(".")
    head = b64u(b'{"alg":"RS256","kid":"x"}')
    with pytest.raises(JwsSignatureInvalidError):
        verifier.verify(f"{head}.{body}.{sig}")


def test_tampered_signature_rejected(signer: JwsSigner, verifier: JwsVerifier) -> None:
    head, body, sig = signer.sign(PAYLOAD).split(".")
    raw = bytearray(unb64u(sig))
    raw[100] ^= 0x01
    with pytest.raises(JwsSignatureInvalidError):
        verifier.verify(f"{head}.{body}.{b64u(bytes(raw))}")
    with pytest.raises(JwsSignatureInvalidError):  # truncated: a crypto error, fails closed
        verifier.verify(f"{head}.{body}.{b64u(bytes(raw[:-1]))}")


def test_wrong_key_rejected(other_key: rsa.RSAPrivateKey, verifier: JwsVerifier) -> None:
    with pytest.raises(JwsSignatureInvalidError):
        verifier.verify(JwsSigner(other_key).sign(PAYLOAD))


# ---------------------------------------------------------------- pinned algorithm


def test_alg_none_rejected(verifier: JwsVerifier) -> None:
    head = b64u(b'{"alg":"none"}')
    with pytest.raises(JwsAlgorithmNotAllowedError, match="'none'"):
        verifier.verify(f"{head}.{b64u(PAYLOAD)}.AAAA")
    with pytest.raises(JwsError):  # the usual empty-signature form
        verifier.verify(f"{head}.{b64u(PAYLOAD)}.")


def test_hs256_keyed_with_public_key_rejected(
    key: rsa.RSAPrivateKey, verifier: JwsVerifier
) -> None:
    """Algorithm confusion: an HMAC keyed with the (public) verification key."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = b64u(b'{"alg":"HS256"}') + f".{b64u(PAYLOAD)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(JwsAlgorithmNotAllowedError, match="HS256"):
        verifier.verify(f"{signing_input}.{b64u(mac)}")


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "ES256", "RS1", ""])
def test_weak_algorithms_cannot_be_configured(key: rsa.RSAPrivateKey, alg: str) -> None:
    with pytest.raises(ValueError):
        JwsVerifier(key.public_key(), [alg])
    with pytest.raises(ValueError):
        JwsSigner(key, alg)


# --------------------------------------------------------------- each check named


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("onlyone", JwsMalformedError),
        ("a.b", JwsMalformedError),
        ("a.b.c.d", JwsMalformedError),
        (b64u(b'{"alg":"RS256"}') + f"=.{b64u(PAYLOAD)}.AAAA", JwsMalformedError),
        (b64u(b'{"alg":"RS256"}') + f".{b64u(PAYLOAD)}.AA+A", JwsMalformedError),
        (b64u(b'{"alg":"RS256"}') + f".{b64u(PAYLOAD)}.A", JwsMalformedError),
        ("çok.kötü.imza", JwsMalformedError),
        (b64u(b"not json") + f".{b64u(PAYLOAD)}.AAAA", JwsHeaderNotJsonError),
        (b64u(b"[1,2]") + f".{b64u(PAYLOAD)}.AAAA", JwsHeaderNotJsonError),
        (b64u(b'{"typ":"JWT"}') + f".{b64u(PAYLOAD)}.AAAA", JwsHeaderInvalidError),
        (
            b64u(b'{"alg":"RS256","crit":["exp"],"exp":1}') + f".{b64u(PAYLOAD)}.AAAA",
            JwsHeaderInvalidError,
        ),
        (b64u(b'{"alg":"PS512"}') + f".{b64u(PAYLOAD)}.AAAA", JwsAlgorithmNotAllowedError),
        (b64u(b'{"alg":"RS512"}') + f".{b64u(PAYLOAD)}.AAAA", JwsSignatureInvalidError),
    ],
)
def test_each_failure_names_its_check(
    verifier: JwsVerifier, token: str, error: type[JwsError]
) -> None:
    with pytest.raises(error) as info:
        verifier.verify(token)
    assert type(info.value) is error
    assert str(info.value).startswith(error.check)


# -------------------------------------------------------------------- §9.2 samples


def test_guide_sample_request_parses() -> None:
    parts = parse_compact(SAMPLE_REQUEST_JWS)
    assert parts.header == {"alg": "RS256"}
    assert parts.payload == SAMPLE_REQUEST_PAYLOAD
    assert json.loads(parts.payload) == {
        "requestHeader": {
            "senderReference": "ME_TEST_YF_121",
            "senderMember": "TIB",
            "sender": "TIB991",
        },
        "issuerMemberCode": "TRISP",
        "processDate": "20230606",
        "opStat": "KO",
    }
    assert len(parts.signature) == 256  # MKK's sample member key: RSA 2048


def test_guide_sample_answer_parses_and_fails_only_on_key(verifier: JwsVerifier) -> None:
    parts = parse_compact(SAMPLE_ANSWER_JWS)
    assert parts.header == {"alg": "RS256"}
    assert json.loads(parts.payload) == {
        "mfundTradeDetails": {},
        "response": {
            "responseCode": "MF04",
            "responseDesc": "MF04: Mesajı Gönderen Referansı Üye bazında -unique- olmalıdır.",
        },
        "responseHeader": {"receiverMember": "MKK", "senderReference": "ME_TEST_YF_121"},
    }
    # Well-formed, allowed alg: with our key instead of MKK's, only the signature fails.
    with pytest.raises(JwsSignatureInvalidError):
        verifier.verify(SAMPLE_ANSWER_JWS)


# ------------------------------------------------------ interop outside joserfc


@pytest.fixture(scope="module")
def key_files(key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("jwskeys")
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (d / "pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return d


@needs_openssl
def test_openssl_verifies_our_jws(signer: JwsSigner, key_files: Path) -> None:
    token = signer.sign(SAMPLE_REQUEST_PAYLOAD)
    head, body, sig = token.split(".")
    (key_files / "input").write_bytes(f"{head}.{body}".encode())
    (key_files / "sig").write_bytes(unb64u(sig))
    run = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(key_files / "pub.pem"),
            "-signature",
            str(key_files / "sig"),
            str(key_files / "input"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Verified OK" in run.stdout


@needs_openssl
def test_our_verifier_accepts_openssl_jws(verifier: JwsVerifier, key_files: Path) -> None:
    signing_input = b64u(b'{"alg":"RS256"}') + f".{b64u(SAMPLE_REQUEST_PAYLOAD)}"
    (key_files / "in2").write_bytes(signing_input.encode())
    subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-sign",
            str(key_files / "key.pem"),
            "-out",
            str(key_files / "sig2"),
            str(key_files / "in2"),
        ],
        check=True,
    )
    token = f"{signing_input}.{b64u((key_files / 'sig2').read_bytes())}"
    assert verifier.verify(token) == SAMPLE_REQUEST_PAYLOAD


def test_cryptography_primitives_verify_our_ps256(key: rsa.RSAPrivateKey) -> None:
    head, body, sig = JwsSigner(key, "PS256").sign(PAYLOAD).split(".")
    key.public_key().verify(  # raises InvalidSignature on mismatch
        unb64u(sig),
        f"{head}.{body}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


# ------------------------------------------------------------------ from settings


def test_signer_and_verifier_from_settings(key: rsa.RSAPrivateKey, tmp_path: Path) -> None:

    _, cert = create_self_signed("Üye A.Ş.", "TR", key=key)
    write_private_key(tmp_path / "key.pem", key, b"gizli")
    write_certificate(tmp_path, "mkk", cert)
    (tmp_path / "pw").write_text("gizli\n")
    by_secret = MkkSigningSettings(
        private_key_file=tmp_path / "key.pem",
        private_key_passphrase=SecretStr("gizli"),
        mkk_certificate_file=tmp_path / "mkk.cer",
        include_kid=True,
        kid="K1",
    )
    by_file = MkkSigningSettings(
        private_key_file=tmp_path / "key.pem",
        private_key_passphrase_file=tmp_path / "pw",
        mkk_certificate_file=tmp_path / "mkk.pem",
        sign_alg="RS512",
        algorithms=["RS512"],
    )
    for settings in (by_secret, by_file):
        token = signer_from_settings(settings).sign(PAYLOAD)
        assert verifier_from_settings(settings).verify(token) == PAYLOAD
    assert json.loads(unb64u(signer_from_settings(by_secret).sign(b"{}").split(".")[0])) == {
        "alg": "RS256",
        "kid": "K1",
    }
    with pytest.raises(JwsKeyError):
        signer_from_settings(MkkSigningSettings())
    with pytest.raises(ValueError):
        MkkSigningSettings(algorithms=["HS256"])
    with pytest.raises(ValueError):
        MkkSigningSettings(sign_alg="none")
