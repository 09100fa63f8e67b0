"""`kopru mkk sign` / `kopru mkk verify` (FAQ 5), through the typer app."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from services.cli.mkk import mkk_app
from services.common.signing.certs import create_self_signed, write_certificate, write_private_key
from services.common.signing.jws import JwsVerifier

runner = CliRunner()
PAYLOAD = b'{"requestHeader":{"senderReference":"R1","senderMember":"TIB","sender":"TIB991"}}\n'


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mkk")
    key, cert = create_self_signed("Test Üye A.Ş.", "TR", days=365)
    (d / "pw").write_text("parola-1\n")
    write_private_key(d / "key.pem", key, b"parola-1")
    write_certificate(d, "cert", cert)
    other = rsa.generate_private_key(65537, 2048)
    (d / "other.pub").write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (d / "payload.json").write_bytes(PAYLOAD)
    return d


def sign(files: Path, *extra: str) -> str:
    result = runner.invoke(
        mkk_app,
        ["sign", "--key", str(files / "key.pem"), "--passphrase-file", str(files / "pw"),
         "--in", str(files / "payload.json"), *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_sign_prints_jws_over_exact_file_bytes(files: Path) -> None:
    token = sign(files)
    assert token.startswith("eyJhbGciOiJSUzI1NiJ9.")  # {"alg":"RS256"}, §9.2
    cert = (files / "cert.pem").read_bytes()
    assert JwsVerifier(x509.load_pem_x509_certificate(cert)).verify(token) == PAYLOAD


def test_verify_prints_payload(files: Path) -> None:
    (files / "answer.jws").write_text(sign(files) + "\n")
    result = runner.invoke(
        mkk_app, ["verify", "--cert", str(files / "cert.cer"), "--in", str(files / "answer.jws")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requestHeader"]["sender"] == "TIB991"


@pytest.mark.parametrize(
    ("mutate", "cert", "reason"),
    [
        (lambda t: t, "other.pub", "INVALID (signature invalid)"),
        (lambda t: t[:-30] + ("A" if t[-30] != "A" else "B") + t[-29:], "cert.pem",
         "INVALID (signature invalid)"),
        (lambda t: "eyJhbGciOiJIUzI1NiJ9." + t.split(".", 1)[1], "cert.pem",
         "INVALID (alg not allowed)"),
        (lambda t: t.replace(".", "", 1), "cert.pem", "INVALID (malformed)"),
    ],
)  # fmt: skip
def test_verify_reports_the_failed_check(
    files: Path, mutate: Callable[[str], str], cert: str, reason: str
) -> None:
    (files / "bad.jws").write_text(mutate(sign(files)))
    result = runner.invoke(
        mkk_app, ["verify", "--cert", str(files / cert), "--in", str(files / "bad.jws")]
    )
    assert result.exit_code == 1
    assert reason in result.stderr
    assert result.stdout == ""


def test_sign_with_other_alg_needs_it_allowed(files: Path) -> None:
    (files / "ps.jws").write_text(sign(files, "--alg", "PS256"))
    args = ["verify", "--cert", str(files / "cert.pem"), "--in", str(files / "ps.jws")]
    assert runner.invoke(mkk_app, args).exit_code == 1
    assert runner.invoke(mkk_app, [*args, "--alg", "PS256"]).exit_code == 0


def test_bad_inputs_exit_2(files: Path) -> None:
    bad_alg = runner.invoke(
        mkk_app, ["sign", "--key", str(files / "key.pem"), "--passphrase-file",
                  str(files / "pw"), "--in", str(files / "payload.json"), "--alg", "HS256"],
    )  # fmt: skip
    assert bad_alg.exit_code == 2
    no_pass = runner.invoke(
        mkk_app, ["sign", "--key", str(files / "key.pem"), "--in", str(files / "payload.json")]
    )
    assert no_pass.exit_code == 2 and "parola" not in no_pass.output
