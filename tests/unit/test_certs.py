"""`kopru cert create/check` and key loading, checked independently against §3.1."""

from __future__ import annotations

import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID
from prometheus_client import REGISTRY
from pydantic import SecretStr
from structlog.testing import capture_logs
from typer.testing import CliRunner

from services.cli.cert import cert_app
from services.common.signing.certs import (
    CertError,
    check_certificate,
    create_self_signed,
    load_certificate,
    load_private_key,
    load_public_key,
    read_passphrase,
    watch_expiry,
)
from tests.conftest import IN_CI

# Under CI=true a missing openssl fails the test instead of skipping it.
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None and not IN_CI, reason="no openssl CLI"
)
runner = CliRunner()
CN = "Merkezi Kayıt Kuruluşu A.Ş."
PASSPHRASE = "güçlü-parola-123"


@pytest.fixture(scope="module")
def key4096() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 4096)


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert")
    pw = out / "pass.txt"
    pw.write_text(PASSPHRASE + "\n", encoding="utf-8")
    result = runner.invoke(
        cert_app,
        [
            "create", "--cn", CN, "--country", "TR", "--org", "MKK", "--state", "İstanbul",
            "--locality", "Sarıyer", "--days", "400", "--out", str(out),
            "--passphrase-file", str(pw),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert PASSPHRASE not in result.output
    return out


def test_created_files_meet_every_rule(created: Path) -> None:
    key_file = created / "member-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pem = x509.load_pem_x509_certificate((created / "member.pem").read_bytes())
    der = x509.load_der_x509_certificate((created / "member.cer").read_bytes())
    assert pem == der

    with pytest.raises(TypeError):  # encrypted: no passphrase, no key
        serialization.load_pem_private_key(key_file.read_bytes(), None)
    key = serialization.load_pem_private_key(key_file.read_bytes(), PASSPHRASE.encode())
    public = pem.public_key()
    assert isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey)
    assert key.public_key().public_numbers() == public.public_numbers()
    assert public.key_size == 4096  # §3.1
    assert pem.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256  # §3.1
    public.verify(  # self-signed with its own key
        pem.signature, pem.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    assert pem.issuer == pem.subject

    def attr(oid: x509.ObjectIdentifier) -> x509.NameAttribute[str]:
        (value,) = pem.subject.get_attributes_for_oid(oid)
        return value  # type: ignore[return-value]

    assert attr(NameOID.COMMON_NAME).value == CN
    assert attr(NameOID.ORGANIZATION_NAME).value == "MKK"
    assert attr(NameOID.COUNTRY_NAME).value == "TR"
    assert attr(NameOID.STATE_OR_PROVINCE_NAME).value == "İstanbul"
    assert attr(NameOID.LOCALITY_NAME).value == "Sarıyer"
    for oid in (NameOID.COMMON_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME):
        assert attr(oid)._type == _ASN1Type.UTF8String  # Turkish characters kept

    span = pem.not_valid_after_utc - pem.not_valid_before_utc
    assert span == timedelta(days=400)
    assert abs(pem.not_valid_before_utc - datetime.now(UTC)) < timedelta(minutes=5)


@needs_openssl
def test_openssl_reads_created_certificate(created: Path) -> None:
    text = subprocess.run(
        ["openssl", "x509", "-in", str(created / "member.cer"), "-inform", "DER",
         "-noout", "-text", "-nameopt", "RFC2253,-esc_msb"],
        capture_output=True, check=True,
    ).stdout.decode("utf-8")  # fmt: skip
    assert "Public-Key: (4096 bit)" in text
    assert "Signature Algorithm: sha256WithRSAEncryption" in text
    assert f"Subject: CN={CN},O=MKK,L=Sarıyer,ST=İstanbul,C=TR" in text
    key_check = subprocess.run(
        ["openssl", "rsa", "-in", str(created / "member-key.pem"), "-check", "-noout",
         "-passin", f"file:{created / 'pass.txt'}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert key_check.returncode == 0, key_check.stderr


def test_check_accepts_created(created: Path) -> None:
    result = runner.invoke(cert_app, ["check", str(created / "member.pem")])
    assert result.exit_code == 0, result.output
    assert "days to expiry 400" in result.output
    assert "ok: meets §3.1" in result.output


@pytest.mark.parametrize("days", ["364", "731", "1095"])
def test_create_refuses_validity_outside_one_to_two_years(tmp_path: Path, days: str) -> None:
    result = runner.invoke(
        cert_app, ["create", "--cn", CN, "--country", "TR", "--days", days, "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "member-key.pem").exists()


def test_create_requires_cn_and_country(tmp_path: Path) -> None:
    assert runner.invoke(cert_app, ["create", "--country", "TR", "--out", str(tmp_path)]).exit_code
    assert runner.invoke(cert_app, ["create", "--cn", CN, "--out", str(tmp_path)]).exit_code
    bad = runner.invoke(
        cert_app, ["create", "--cn", " ", "--country", "TR", "--out", str(tmp_path)]
    )
    assert bad.exit_code != 0 and "CN" in bad.output


def test_create_refuses_to_overwrite(created: Path) -> None:
    result = runner.invoke(
        cert_app, ["create", "--cn", CN, "--country", "TR", "--out", str(created)]
    )
    assert result.exit_code == 2 and "refusing to overwrite" in result.output


# ------------------------------------------------------------------ check violations


def make_cert(
    key: rsa.RSAPrivateKey,
    *,
    cn: str | None = CN,
    days: int = 365,
    algorithm: hashes.SHA256 | hashes.SHA512 | None = None,
    start: datetime | None = None,
) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "TR")]
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    name = x509.Name(attrs)
    begin = start or datetime.now(UTC) - timedelta(hours=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin)
        .not_valid_after(begin + timedelta(days=days))
        .sign(key, algorithm or hashes.SHA256())
    )


def run_check(tmp_path: Path, cert: x509.Certificate) -> tuple[int, str]:
    path = tmp_path / "c.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = runner.invoke(cert_app, ["check", str(path)])
    return result.exit_code, result.output


def test_check_rejects_2048_bit(tmp_path: Path) -> None:
    code, out = run_check(tmp_path, make_cert(rsa.generate_private_key(65537, 2048)))
    assert code == 1
    assert "violation: public key is 2048 bit, must be 4096 bit" in out


@needs_openssl
def test_check_rejects_sha1(tmp_path: Path, key4096: rsa.RSAPrivateKey) -> None:
    # cryptography refuses to sign with SHA-1; openssl still does.
    (tmp_path / "k.pem").write_bytes(
        key4096.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", str(tmp_path / "k.pem"), "-sha1",
         "-days", "365", "-subj", "/C=TR/CN=Test", "-out", str(tmp_path / "sha1.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    result = runner.invoke(cert_app, ["check", str(tmp_path / "sha1.pem")])
    assert result.exit_code == 1
    assert "violation: signature algorithm is sha1WithRSAEncryption" in result.output
    assert result.output.count("violation:") == 1


def test_check_rejects_three_years(tmp_path: Path, key4096: rsa.RSAPrivateKey) -> None:
    code, out = run_check(tmp_path, make_cert(key4096, days=3 * 365))
    assert code == 1
    assert "violation: valid 1095 days, at most 2 years allowed" in out


def test_check_rejects_missing_cn(tmp_path: Path, key4096: rsa.RSAPrivateKey) -> None:
    code, out = run_check(tmp_path, make_cert(key4096, cn=None))
    assert code == 1
    assert "violation: subject has no CN" in out


def test_check_lists_every_violation(key4096: rsa.RSAPrivateKey) -> None:
    old = make_cert(
        key4096,
        cn=None,
        days=200,
        algorithm=hashes.SHA512(),
        start=datetime(2020, 1, 1, tzinfo=UTC),
    )
    result = check_certificate(old)
    assert len(result.violations) == 4  # no CN, sha512, < 1 year, expired
    assert result.days_left < 0
    assert any("expired" in v for v in result.violations)


def test_check_accepts_leap_year_two_years(key4096: rsa.RSAPrivateKey) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    assert check_certificate(make_cert(key4096, days=731, start=start)).ok


# ------------------------------------------------------------------------- loading


def test_load_pem_and_pkcs12_with_secret_passphrase(
    tmp_path: Path, key4096: rsa.RSAPrivateKey
) -> None:
    cert = make_cert(key4096)
    secret = SecretStr(PASSPHRASE)
    pw = read_passphrase(secret)
    assert pw == PASSPHRASE.encode()
    (tmp_path / "k.pem").write_bytes(
        key4096.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(pw),
        )
    )
    p12 = pkcs12.serialize_key_and_certificates(
        b"member", key4096, cert, None, serialization.BestAvailableEncryption(pw)
    )
    (tmp_path / "k.p12").write_bytes(p12)
    numbers = key4096.private_numbers()
    assert load_private_key(tmp_path / "k.pem", pw).private_numbers() == numbers
    assert load_private_key(tmp_path / "k.p12", pw).private_numbers() == numbers
    assert load_certificate(tmp_path / "k.p12", pw) == cert
    for path in (tmp_path / "k.pem", tmp_path / "k.p12"):
        with pytest.raises(CertError) as info:
            load_private_key(path, b"wrong")
        assert "wrong" not in str(info.value)


def test_passphrase_file_and_public_key_loading(tmp_path: Path, key4096: rsa.RSAPrivateKey) -> None:
    (tmp_path / "pw").write_bytes(b"s3cret\n")
    assert read_passphrase(None, tmp_path / "pw") == b"s3cret"
    assert read_passphrase(SecretStr("a"), tmp_path / "pw") == b"a"
    assert read_passphrase() is None
    cert = make_cert(key4096)
    (tmp_path / "c.cer").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    (tmp_path / "pub.pem").write_bytes(
        key4096.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    expected = key4096.public_key().public_numbers()
    assert load_public_key(tmp_path / "c.cer").public_numbers() == expected
    assert load_public_key(tmp_path / "pub.pem").public_numbers() == expected
    (tmp_path / "junk").write_bytes(b"not a key")
    with pytest.raises(CertError):
        load_public_key(tmp_path / "junk")


# ------------------------------------------------------------------- expiry watch


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("kopru_certificate_expiry_days", {"certificate": name})


def test_expiry_warning_and_metric(key4096: rsa.RSAPrivateKey) -> None:
    start = datetime.now(UTC) - timedelta(days=355)
    soon = make_cert(key4096, days=365, start=start)  # 10 days left
    with capture_logs() as logs:
        left = watch_expiry(soon, "soon", warn_days=30)
    assert 9.9 < left < 10.1
    assert gauge("soon") == pytest.approx(left)
    assert [e["event"] for e in logs] == ["certificate_expiring"]
    assert logs[0]["log_level"] == "warning" and logs[0]["certificate"] == "soon"

    with capture_logs() as logs:
        watch_expiry(make_cert(key4096, days=365), "fresh", warn_days=30)
    assert logs == []
    assert gauge("fresh") is not None and gauge("fresh") > 360  # type: ignore[operator]

    with capture_logs() as logs:
        watch_expiry(soon, "expired", now=datetime.now(UTC) + timedelta(days=11))
    assert logs[0]["event"] == "certificate_expired" and logs[0]["log_level"] == "error"
    assert gauge("expired") is not None and gauge("expired") < 0  # type: ignore[operator]


def test_create_self_signed_function_for_other_code(key4096: rsa.RSAPrivateKey) -> None:
    key, cert = create_self_signed("Demo Üye A.Ş.", "tr", org="DEMO", days=365, key=key4096)
    assert key is key4096
    assert check_certificate(cert).ok
    with pytest.raises(CertError):
        create_self_signed("X", "TR", days=800, key=key4096)
    with pytest.raises(CertError):
        create_self_signed("X", "TUR", key=key4096)
    with pytest.raises(CertError):
        create_self_signed("X", "TR", key=rsa.generate_private_key(65537, 2048))
