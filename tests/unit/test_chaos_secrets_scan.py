"""The chaos run's secret scan finds every kind of planted secret and stays quiet on
ordinary log lines and events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.secrets_scan import Hit, Needles, scan, scan_logs, summary
from services.common.mkk.zip_password import zip_password
from services.common.signing.certs import generate_rsa_key, write_private_key

JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJUSUI5OTEiLCJleHAiOjE3MDAwMDAwMDB9."
    "c2lnbmF0dXJlLWJ5dGVzLWdvLWhlcmUtYW5kLW1vcmU"
)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "member.key"
    write_private_key(path, generate_rsa_key(2048), None)
    return path


@pytest.fixture
def needles(key: Path) -> Needles:
    return Needles.build(
        mkk_password="Demo991!",
        other_secrets={"zip key": "zk-123456", "pos password": "demo-pos-Pa55!"},
        zip_key="zk-123456",
        requests=[("TIB", "chaos-x-0001")],
        private_keys=[key],
    )


def kinds(data: str, needles: Needles) -> dict[str, int]:
    hits: list[Hit] = []
    scan(data.encode(), "here", needles, hits)
    return dict(summary(hits))


def test_clean_lines_have_no_hits(needles: Needles) -> None:
    line = json.dumps(
        {
            "event": "report completed",
            "request_id": "chaos-x-0001",
            "password": "**********",
            "timestamp": "2026-11-29T10:15:36.644402Z",
            "ts_ms": 1764411336644,
            "token": "000001123456789",
            "ref_id": "20250505123456789012",
            "file_name": "MKK_BALANCE_20261129102011123.zip",
            "sha256": "ab5500000000000004cd" + "0" * 44,  # digits inside a hex digest
            "files": [{"name": "x_5500000000000004", "rows": 300}],
            "stamp": 20261129102011123,
            "event_id": "c0ffee00-1234-4abc-8def-694612345674",  # a UUID's digit-only group
            "message_id": "3f1c-5500000000000004",  # digits of a dashed id
            "ms": 1764411336644,
        }
    )
    assert kinds(line, needles) == {}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"password": "Demo991!"}', "mkk password"),
        ('{"pos": "demo-pos-Pa55!"}', "pos password"),
        ("key zk-123456 leaked", "zip key"),
        (f"zip {zip_password('zk-123456', 'TIB', 'chaos-x-0001')}", "zip password"),
        (f"Authorization: Bearer {JWT}", "token (JWT)"),
        ('"posMessage": {"Pan": "4111111111111111"}', "card number"),
        ("card 5500 0000 0000 0004", "card number"),
        ("card 4111-1111-1111-1111", "card number"),
        ("amex 378282246310005.", "card number"),
        ('{"Cvc":"737"}', "CVC"),
        ("holder AYSE YILMAZ", "card data"),
        ("-----BEGIN PRIVATE KEY-----", "private key"),
    ],
)
def test_each_kind_is_found(needles: Needles, text: str, kind: str) -> None:
    assert kind in kinds(text, needles)


def test_a_private_key_body_line_is_found(needles: Needles, key: Path) -> None:
    body = key.read_text().splitlines()[5]
    assert kinds(f"debug: {body}", needles) == {"private key": 1}


def test_logs_are_scanned_line_by_line(needles: Needles, tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text('{"event": "ok"}\n{"event": "oops", "pw": "Demo991!"}\n')
    hits: list[Hit] = []
    assert scan_logs([log, tmp_path / "missing.log"], needles, hits) == 2
    assert [(h.kind, h.where) for h in hits] == [("mkk password", "svc.log:2 (pw)")]
    assert "Demo991!" not in hits[0].sample  # the report never prints the secret
