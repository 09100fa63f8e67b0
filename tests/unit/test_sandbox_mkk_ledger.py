"""The synthetic ledger, the streamed zip writer, config loading and the CLI command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import pyzipper
import typer
from typer.testing import CliRunner

from schemas.mkk import CSV_COLUMNS, JSON_FIELDS, BalanceRow
from services.cli.sandbox import sandbox_app
from services.sandbox.mkk.config import ConfigError, LedgerConfig, load_config
from services.sandbox.mkk.content import write_report_zip
from services.sandbox.mkk.ledger import SAMPLE_ISIN, Ledger, is_valid_isin, isin_check_digit

pytest_plugins = ["tests.unit.test_sandbox_mkk_support"]


@pytest.mark.parametrize(
    "isin", ["US0378331005", "TRAGARAN91N1", "TRATHYAO91M5", "DE000BAY0017", "GB0002634946"]
)
def test_isin_check_digits_of_real_isins(isin: str) -> None:
    assert isin_check_digit(isin[:11]) == int(isin[-1])
    assert is_valid_isin(isin)


def test_invalid_isins() -> None:
    assert not is_valid_isin("TRAGARAN91N2")
    assert not is_valid_isin("TRAGARAN91N")
    assert not is_valid_isin("12AGARAN91N1")


def test_ledger_is_deterministic_and_valid() -> None:
    ledger = Ledger(LedgerConfig(rows=2000, seed=5))
    rows = list(ledger.rows("TIB", "20250505", {}))
    assert rows == list(Ledger(LedgerConfig(rows=2000, seed=5)).rows("TIB", "20250505", {}))
    assert rows != list(Ledger(LedgerConfig(rows=2000, seed=6)).rows("TIB", "20250505", {}))
    assert len(rows) == 2000
    positions = {(r[2], r[3], r[6]) for r in rows}
    assert len(positions) == 2000  # no position twice
    assert all(is_valid_isin(r[6]) for r in rows)
    assert {r[5] for r in rows} <= {"XIST", "XEQY", "XDSM"}
    assert all(r[8].count(".") == 1 and r[8].replace(".", "").isdigit() for r in rows)
    assert rows[0][2:4] == ("1", "SERB") and rows[0][6] == SAMPLE_ISIN


def test_filters_select_a_subset_of_the_same_rows() -> None:
    ledger = Ledger(LedgerConfig(rows=3000))
    everything = list(ledger.rows("TIB", "20250505", {}))
    for filters in ({"sub_acc_no": "SERB"}, {"sec_class": "HS"}, {"acc_class": "BY"},
                    {"isin": everything[5][6]}, {"acc_no": everything[7][2]},
                    {"portfolio_code": "P1"}, {"sec_type": "DT"}):  # fmt: skip
        subset = list(ledger.rows("TIB", "20250505", filters))
        assert subset, filters
        assert set(subset) < set(everything)
    assert [r for r in everything if r[3] == "SERB"] == list(
        ledger.rows("TIB", "20250505", {"sub_acc_no": "SERB"})
    )
    assert list(ledger.rows("TIB", "20250505", {"acc_no": "99999999"})) == []


def test_parts_split_the_rows() -> None:
    ledger = Ledger(LedgerConfig(rows=1000))
    parts = [list(ledger.rows("TIB", "20250505", {}, files=3, part=p)) for p in range(3)]
    assert sum(map(len, parts)) == 1000
    assert set().union(*parts) == set(ledger.rows("TIB", "20250505", {}))


@pytest.mark.parametrize("file_type", ["json", "csv"])
def test_zip_writer(tmp_path: Path, file_type: str) -> None:
    ledger = Ledger(LedgerConfig(rows=5000))
    path = tmp_path / "r.zip"
    n = write_report_zip(
        path, f"r.{file_type}", ledger.rows("TIB", "20250505", {}), file_type=file_type,
        password=b"Secret123",
    )  # fmt: skip
    assert n == 5000 and not (tmp_path / "r.zip.part").exists()
    with pyzipper.AESZipFile(path) as zf:
        info = zf.getinfo(f"r.{file_type}")
        assert info.flag_bits & 0x1  # encrypted
        zf.setpassword(b"Secret123")
        text = zf.read(info).decode()
    if file_type == "json":
        rows = json.loads(text)
        assert len(rows) == 5000 and tuple(rows[0]) == JSON_FIELDS
        parsed = [BalanceRow.model_validate(r) for r in rows[:10]]
    else:
        lines = text.splitlines()
        assert tuple(lines[0].split(",")) == CSV_COLUMNS and len(lines) == 5001
        import csv

        reader = csv.DictReader(io.StringIO(text))
        parsed = [BalanceRow.from_csv(r) for r, _ in zip(reader, range(10), strict=False)]
    assert parsed[0].isin == SAMPLE_ISIN and parsed[0].balance_amount > 0


def test_empty_report_zip(tmp_path: Path) -> None:
    n = write_report_zip(tmp_path / "e.zip", "e.json", iter(()), file_type="json", password=b"A1")
    assert n == 0


def test_load_config_yaml_and_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "mkk.yaml"
    cfg.write_text(
        "members:\n  - code: ABC\n    users:\n      - {username: ABC991, password: 'Abc991!x'}\n"
        "ledger: {rows: 10}\nfaults: {seed: 3, http500_rate: 0.1}\nservice_hours: true\n"
    )
    config = load_config(cfg, state_dir=tmp_path / "s")
    assert [m.code for m in config.members] == ["ABC"] and config.ledger.rows == 10
    assert config.service_hours and config.state_dir == tmp_path / "s"
    assert [m.code for m in load_config().members] == ["TIB"]  # the demo member
    bad = tmp_path / "bad.yaml"
    bad.write_text("members:\n  - code: abc\n")
    with pytest.raises(ConfigError, match=r"members\.0\.code"):
        load_config(bad)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        load_config(tmp_path / "x.json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    secret = tmp_path / "secret.yaml"
    secret.write_text(
        "members:\n  - code: ABC\n    users:\n      - {username: a, password: 'Sekr3t!!'}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(secret)
    assert "Sekr3t!!" not in str(err.value)


def test_cli_mkk_command_help_and_bad_config(tmp_path: Path) -> None:
    # Mounted as `kopru` mounts it (services/cli.py), so `sandbox` is a group.
    kopru = typer.Typer()
    kopru.add_typer(sandbox_app, name="sandbox")
    runner = CliRunner()
    r = runner.invoke(kopru, ["sandbox", "mkk", "--help"])
    assert r.exit_code == 0
    for option in ("--port", "--host", "--tls", "--config", "--state-dir"):
        assert option in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("report_lock: sometimes\n")
    r = runner.invoke(kopru, ["sandbox", "mkk", "--config", str(bad)])
    assert r.exit_code == 2 and "report_lock" in r.output


def test_demo_keys_follow_section_3_1(keys_dir: Path, tmp_path: Path) -> None:
    import shutil

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    from services.sandbox.mkk.keys import ensure_demo_keys

    shutil.copytree(keys_dir, tmp_path / "s")
    demo = ensure_demo_keys(tmp_path / "s")  # already there: nothing regenerated
    assert demo.member_key == tmp_path / "s/members/TIB/key.pem"
    assert (demo.member_key.stat().st_mode & 0o777) == 0o600
    cert = x509.load_pem_x509_certificate(demo.member_certificate.read_bytes())
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "TR"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "TIB"
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 365 <= days <= 731
    assert demo.mkk_certificate.is_file()
