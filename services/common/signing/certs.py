"""Certificates and keys: create per §3.1, check against §3.1, load, watch expiry.

§3.1 "Self-Signed Sertifika Üretim Standartları": RSA 4096-bit public key,
sha256withRSA, CN = institution title (required), O = MKK member code (optional),
C = country (required), ST = city (optional), L = district (optional), valid at least
1 and at most 2 years. MKK takes the certificate as ``.cer`` or ``.pem`` (§3.1). The same
certificate serves SOAP and REST (FAQ 12).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from prometheus_client import Gauge
from pydantic import SecretStr

RSA_BITS = 4096  # §3.1 Public key: 4096 bit
MIN_DAYS = 365  # §3.1 asgari 1 yıl
MAX_DAYS = 730  # §3.1 azami 2 yıl (what `create` writes)
MAX_CHECK_DAYS = 731  # two calendar years may span a 29 February
DEFAULT_WARN_DAYS = 30

CERT_EXPIRY_DAYS = Gauge(
    "kopru_certificate_expiry_days",
    "Days until the certificate expires (negative when expired)",
    ["certificate"],
)

_log = structlog.get_logger(__name__)


class CertError(ValueError):
    """A key or certificate cannot be created or loaded."""


# ----------------------------------------------------------------------------- create


def generate_rsa_key(bits: int = RSA_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def build_subject(
    cn: str,
    country: str,
    org: str | None = None,
    state: str | None = None,
    locality: str | None = None,
) -> x509.Name:
    """§3.1 subject. UTF8String for every text field (Turkish titles), C printable."""
    if not cn.strip():
        raise CertError("CN (institution title) is required (§3.1)")
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise CertError("C must be a two-letter country code, e.g. TR (§3.1)")
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, country.upper())]
    if state:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state))
    if locality:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, locality))
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def create_self_signed(
    cn: str,
    country: str,
    org: str | None = None,
    state: str | None = None,
    locality: str | None = None,
    days: int = MAX_DAYS,
    *,
    key: rsa.RSAPrivateKey | None = None,
    now: datetime | None = None,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new RSA-4096 key and its self-signed sha256WithRSA certificate per §3.1."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise CertError(f"validity must be {MIN_DAYS}..{MAX_DAYS} days (§3.1), got {days}")
    if key is not None and key.key_size != RSA_BITS:
        raise CertError(f"key must be RSA {RSA_BITS} bit (§3.1), got {key.key_size}")
    subject = build_subject(cn, country, org, state, locality)
    private_key = key or generate_rsa_key()
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    public = private_key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(private_key, hashes.SHA256())  # §3.1 sha256withRSA
    )
    return private_key, cert


# ------------------------------------------------------------------------------ write


def private_key_pem(key: rsa.RSAPrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_private_key(path: Path, key: rsa.RSAPrivateKey, passphrase: bytes | None) -> None:
    """Write the key as PEM PKCS#8, mode 0600 from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key, passphrase))
    path.chmod(0o600)  # an existing file keeps its old mode through os.open


def write_certificate(directory: Path, stem: str, cert: x509.Certificate) -> tuple[Path, Path]:
    """Write ``stem.pem`` and ``stem.cer`` (DER); §3.1 accepts either extension."""
    pem = directory / f"{stem}.pem"
    cer = directory / f"{stem}.cer"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cer.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return pem, cer


# ------------------------------------------------------------------------------ check


@dataclass
class CertCheck:
    """Result of checking a certificate against §3.1."""

    subject: str
    not_after: datetime
    days_left: float
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value).strip() if values else ""


def days_left(cert: x509.Certificate, now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def check_certificate(cert: x509.Certificate, now: datetime | None = None) -> CertCheck:
    """Every §3.1 rule the certificate breaks, and its days to expiry."""
    now = now or datetime.now(UTC)
    result = CertCheck(
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        days_left=days_left(cert, now),
    )
    v = result.violations
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        v.append(f"public key is {type(public).__name__}, must be RSA {RSA_BITS} bit (§3.1)")
    elif public.key_size != RSA_BITS:
        v.append(f"public key is {public.key_size} bit, must be {RSA_BITS} bit (§3.1)")
    sig_oid = cert.signature_algorithm_oid
    if sig_oid != SignatureAlgorithmOID.RSA_WITH_SHA256:
        name = getattr(sig_oid, "_name", sig_oid.dotted_string)
        v.append(f"signature algorithm is {name}, must be sha256WithRSAEncryption (§3.1)")
    if not _attr(cert, NameOID.COMMON_NAME):
        v.append("subject has no CN (institution title), required (§3.1)")
    country = _attr(cert, NameOID.COUNTRY_NAME)
    if not country:
        v.append("subject has no C (country), required (§3.1)")
    elif len(country) != 2:
        v.append(f"subject C={country!r} is not a two-letter country code (§3.1)")
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    if span < timedelta(days=MIN_DAYS):
        v.append(f"valid {span.days} days, at least 1 year ({MIN_DAYS} days) required (§3.1)")
    if span > timedelta(days=MAX_CHECK_DAYS):
        v.append(f"valid {span.days} days, at most 2 years allowed (§3.1)")
    if now < cert.not_valid_before_utc:
        v.append(f"not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        v.append(f"expired on {cert.not_valid_after_utc.isoformat()}")
    return result


# ------------------------------------------------------------------------------- load


def read_passphrase(secret: SecretStr | None = None, file: Path | None = None) -> bytes | None:
    """The passphrase from a secret, else from a file (trailing newline dropped)."""
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value().encode("utf-8")
    if file is not None:
        value = file.read_bytes().rstrip(b"\r\n")
        return value or None
    return None


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def load_private_key(path: Path, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM, DER or PKCS#12 (.p12/.pfx)."""
    data = path.read_bytes()
    key: Any
    try:
        if _is_pem(data):
            key = serialization.load_pem_private_key(data, passphrase)
        else:
            try:
                key = serialization.load_der_private_key(data, passphrase)
            except ValueError:
                key, _cert, _extra = pkcs12.load_key_and_certificates(data, passphrase)
    except (ValueError, TypeError) as exc:
        # The library's message never contains the passphrase or key material.
        raise CertError(f"cannot load private key from {path}: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertError(f"{path} holds no RSA private key")
    return key


def load_certificate(path: Path, passphrase: bytes | None = None) -> x509.Certificate:
    """A certificate from PEM, DER (.cer) or PKCS#12."""
    data = path.read_bytes()
    try:
        if _is_pem(data):
            return x509.load_pem_x509_certificate(data)
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            _key, cert, _extra = pkcs12.load_key_and_certificates(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise CertError(f"cannot load certificate from {path}: {exc}") from None
    if cert is None:
        raise CertError(f"{path} holds no certificate")
    return cert


def load_public_key(path: Path) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM/DER public key or a certificate (BKM, MKK)."""
    data = path.read_bytes()
    public: Any
    try:
        if _is_pem(data):
            if b"CERTIFICATE" in data:
                public = x509.load_pem_x509_certificate(data).public_key()
            else:
                public = serialization.load_pem_public_key(data)
        else:
            try:
                public = serialization.load_der_public_key(data)
            except ValueError:
                public = x509.load_der_x509_certificate(data).public_key()
    except (ValueError, TypeError) as exc:
        raise CertError(f"cannot load public key from {path}: {exc}") from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise CertError(f"{path} holds no RSA public key")
    return public


# ----------------------------------------------------------------------------- expiry


def watch_expiry(
    cert: x509.Certificate,
    name: str,
    warn_days: int = DEFAULT_WARN_DAYS,
    *,
    log: Any = None,
    now: datetime | None = None,
) -> float:
    """Export days to expiry as ``kopru_certificate_expiry_days{certificate=name}`` and
    log a warning within ``warn_days`` of expiry (an error once expired)."""
    left = days_left(cert, now)
    CERT_EXPIRY_DAYS.labels(certificate=name).set(left)
    logger = log or _log
    fields = {
        "certificate": name,
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "days_left": round(left, 1),
    }
    if left <= 0:
        logger.error("certificate_expired", **fields)
    elif left <= warn_days:
        logger.warning("certificate_expiring", warn_days=warn_days, **fields)
    return left
