"""Keys and certificates of the sandbox, created on first run and kept in the state dir.

- <state_dir>/mkk/key.pem, cert.pem: the sandbox's own "MKK" signing key and its
  self-signed certificate; kopru verifies MKK's answers with cert.pem.
- <state_dir>/members/<code>/key.pem, cert.pem: a demo member's key and self-signed
  certificate per §3.1 (RSA 4096, sha256WithRSA, CN and C set, O = member code).
- <state_dir>/tls/key.pem, cert.pem: a server certificate for 127.0.0.1 / localhost.

Written with `cryptography` directly: the sandbox plays MKK and stays independent of
kopru's client-side code. Private keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class KeyPair:
    key_path: Path
    cert_path: Path


def mkk_key_paths(state_dir: Path) -> KeyPair:
    return KeyPair(state_dir / "mkk" / "key.pem", state_dir / "mkk" / "cert.pem")


def member_key_paths(state_dir: Path, member: str) -> KeyPair:
    d = state_dir / "members" / member
    return KeyPair(d / "key.pem", d / "cert.pem")


def tls_key_paths(state_dir: Path) -> KeyPair:
    return KeyPair(state_dir / "tls" / "key.pem", state_dir / "tls" / "cert.pem")


def _name(cn: str, country: str, org: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    return x509.Name(attrs)


def _write_pair(
    pair: KeyPair,
    *,
    cn: str,
    country: str,
    org: str | None,
    bits: int,
    days: int = 730,
    san: list[x509.GeneralName] | None = None,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = _name(cn, country, org)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))  # §3.1: 1 to 2 years
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(key, hashes.SHA256())  # §3.1: sha256WithRSA
    pair.key_path.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(pair.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    pair.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _exists(pair: KeyPair) -> bool:
    return pair.key_path.is_file() and pair.cert_path.is_file()


def ensure_mkk_key(state_dir: Path, bits: int = 2048) -> KeyPair:
    pair = mkk_key_paths(state_dir)
    if not _exists(pair):
        _write_pair(
            pair, cn="Merkezi Kayıt Kuruluşu A.Ş. (sandbox)", country="TR", org="MKK", bits=bits
        )
    return pair


def ensure_member_key(
    state_dir: Path, member: str, title: str, country: str, bits: int = 4096
) -> KeyPair:
    pair = member_key_paths(state_dir, member)
    if not _exists(pair):
        _write_pair(pair, cn=title, country=country, org=member, bits=bits)
    return pair


def ensure_tls_key(state_dir: Path) -> KeyPair:
    pair = tls_key_paths(state_dir)
    if not _exists(pair):
        san: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        _write_pair(pair, cn="localhost", country="TR", org=None, bits=2048, san=san)
    return pair


@dataclass(frozen=True, slots=True)
class DemoKeys:
    """What kopru's services are configured with in the demo (MkkSigningSettings):
    private_key_file, certificate_file and mkk_certificate_file."""

    member_key: Path
    member_certificate: Path
    mkk_certificate: Path


def ensure_demo_keys(
    state_dir: Path, member: str = "TIB", title: str = "Demo Yatırım Menkul Değerler A.Ş."
) -> DemoKeys:
    """Create (once) the sandbox MKK key and the demo member's key, without a server."""
    mkk = ensure_mkk_key(state_dir)
    pair = ensure_member_key(state_dir, member, title, "TR")
    return DemoKeys(pair.key_path, pair.cert_path, mkk.cert_path)


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key
