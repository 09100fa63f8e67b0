"""Report lifecycle (§5.1, §6.1, §6.2) and the zipped content (§5.1.6)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyzipper

from schemas.mkk import CSV_COLUMNS, JSON_FIELDS
from services.sandbox.mkk import create_app, sandbox_state
from services.sandbox.mkk.state import SandboxState
from tests.unit.test_sandbox_mkk_support import (
    BALANCE,
    CONTENT,
    SAMPLE_BALANCE,
    SAMPLE_CONTENT,
    SAMPLE_STATUS,
    STATUS,
    MkkClient,
    code_of,
    make_config,
    sample,
    two_members,
)

pytest_plugins = ["tests.unit.test_sandbox_mkk_support"]

STEP = 10.0  # seconds of sandbox time per pending status


@pytest.fixture
def slow_config(keys_dir: Path, tmp_path: Path) -> Any:
    d = {"rp020_s": STEP, "rp021_s": STEP, "rp022_s": STEP, "rp023_s": STEP}
    return make_config(keys_dir, tmp_path / "slow", members=two_members(), durations=d)


@pytest.fixture
async def slow(slow_config: Any, keys_dir: Path) -> Any:
    app = create_app(slow_config)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mkk.test") as http:
        c = MkkClient(http, keys_dir / "members/TIB/key.pem", keys_dir / "mkk/cert.pem")
        yield c, sandbox_state(app)
    sandbox_state(app).close()


def open_zip(data: bytes, password: str) -> tuple[str, str]:
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        [info] = zf.infolist()
        zf.setpassword(password.encode())
        return info.filename, zf.read(info.filename).decode()


async def test_status_walks_rp020_to_0000_over_sandbox_time(slow: Any) -> None:
    client, state = slow
    status, body = await client.balance()
    assert (status, code_of(body)) == (200, "0000")
    ref_id = body["refId"]
    assert len(ref_id) == 20 and ref_id.isalnum()
    seen = []
    for _ in range(4):
        status, body = await client.status(ref_id)
        seen.append((status, code_of(body)))
        state.clock.advance(STEP)
    assert seen == [(422, "RP020"), (422, "RP021"), (422, "RP022"), (422, "RP023")]
    status, body = await client.wait_final(ref_id)
    assert (status, code_of(body)) == (200, "0000")
    [name] = body["fileNames"]
    assert name.startswith("MKK_RP166_") and name.endswith(".zip")  # §6.1.6
    assert body["responseHeader"]["messageId"]
    assert "mkkSenderReference" not in body["responseHeader"]


async def test_content_before_ready_answers_the_pending_code(slow: Any) -> None:
    client, _state = slow
    _, body = await client.balance()
    r = await client.content(body["refId"], "MKK_RP166_20250505000000.zip")
    err = client.verify(r.text)
    assert r.status_code == 422 and err["responseCode"] == "RP020"  # §6.2.7, not nested
    assert err["responseHeader"]["messageId"]


async def test_rp003_while_a_report_is_in_progress(slow: Any) -> None:
    client, state = slow
    _, first = await client.balance()
    status, body = await client.balance()
    assert (status, code_of(body)) == (422, "RP003")
    assert body["responseHeader"]["messageId"]
    state.report_lock = "off"
    _, body = await client.balance()
    assert code_of(body) == "0000"
    state.report_lock = "member"
    state.clock.advance(4 * STEP)
    await client.wait_final(first["refId"])
    await client.wait_final(body["refId"])
    _, body = await client.balance()
    assert code_of(body) == "0000"


async def test_rp018_for_unknown_and_expired_ref_ids(slow: Any) -> None:
    client, state = slow
    _, body = await client.status("e7M7RhX2xUzR3uAjsb2s")
    assert code_of(body) == "RP018"
    _, body = await client.balance()
    ref_id = body["refId"]
    state.clock.advance(4 * STEP)
    _, body = await client.wait_final(ref_id)
    assert code_of(body) == "0000"
    state.clock.advance(24 * 3600)  # §5.1.5: a refId is queried for 24 hours only
    await client.auth()
    _, body = await client.status(ref_id)
    assert code_of(body) == "RP018"
    r = await client.content(ref_id, "MKK_RP166_20250505000000.zip")
    assert client.verify(r.text)["responseCode"] == "RP018"


async def test_rp025_injected_through_the_admin_api(
    client: MkkClient, http: httpx.AsyncClient
) -> None:
    r = await http.post("/_sandbox/reports/fail-next", json={"count": 1})
    assert r.json() == {"fail_next_reports": 1}
    _, body = await client.balance()
    status, body = await client.wait_final(body["refId"])
    assert (status, code_of(body)) == (422, "RP025")
    _, body = await client.balance()
    _, body = await client.wait_final(body["refId"])
    assert code_of(body) == "0000"


async def test_rp026_when_filters_match_no_rows(client: MkkClient) -> None:
    _, body = await client.balance(accNo="999999999")
    status, body = await client.wait_final(body["refId"])
    assert (status, code_of(body)) == (422, "RP026")
    assert "fileNames" not in body


async def test_rp037_rp038_and_process_date_rules(client: MkkClient, state: SandboxState) -> None:
    _, body = await client.balance(accClass="ZZ")
    assert code_of(body) == "RP037" and body["responseHeader"]["messageId"]
    _, body = await client.balance(isin="TRAGARAN91N2")  # wrong check digit
    assert code_of(body) == "RP038"
    future = (state.today() + dt.timedelta(days=1)).strftime("%Y%m%d")
    status, body = await client.balance(processDate=future)
    assert (status, code_of(body)) == (500, "OI002")
    status, body = await client.balance(processDate="20250230")
    assert code_of(body) == "OI002"
    today = state.today().strftime("%Y%m%d")
    _, body = await client.balance(processDate=today)
    _, body = await client.wait_final(body["refId"])
    assert body["fileNames"][0].startswith("MKK_RP013_")  # today: RP013 (§5.1.1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fileType", "xml"),
        ("zipPassword", "short1A"),
        ("zipPassword", "nouppercase1"),
        ("zipPassword", "NoDigitsHere"),
        ("zipPassword", "A1" + "x" * 49),
        ("subAccNo", "SER1"),
        ("isin", "TRAGARAN91N"),
        ("secClass", "HS_"),
        ("portfolioCode", "ABCDEFGHIJ"),
        ("accNo", "1234567890123456"),
        ("processDate", "2025-05-05"),
    ],
)
async def test_balance_report_field_rules(client: MkkClient, field: str, value: str) -> None:
    status, body = await client.balance(**{field: value})
    assert (status, code_of(body)) == (500, "OI002")
    assert "messageId" not in body["responseHeader"]


async def test_missing_required_field_is_sp001(client: MkkClient) -> None:
    status, body = await client.balance(fileType=None)
    assert (status, code_of(body)) == (422, "SP001")


async def test_guide_samples_are_accepted_and_the_zip_opens(
    client: MkkClient, state: SandboxState
) -> None:
    # §5.1.4 verbatim, signed with the demo member's key.
    status, body = await client.call(BALANCE, SAMPLE_BALANCE)
    assert (status, code_of(body)) == (200, "0000")
    assert body["responseHeader"] == {
        "senderReference": "MKKTEST100", "receiverMember": "TIB",
        "messageId": body["responseHeader"]["messageId"],
    }  # fmt: skip
    ref_id = body["refId"]
    # §6.1.4 with the sample's reference is a reuse now; with a fresh one and our refId:
    status, sbody = await client.call(STATUS, sample(SAMPLE_STATUS, senderReference="MKKTEST101"))
    assert code_of(sbody) == "RP018"  # the guide's refId is not ours
    _, sbody = await client.wait_final(ref_id)
    [name] = sbody["fileNames"]
    status, cbody = await client.call(CONTENT, sample(SAMPLE_CONTENT, senderReference="MKKTEST102"))
    assert cbody["responseCode"] == "RP018"
    r = await client.post(
        CONTENT, sample(SAMPLE_CONTENT, senderReference="MKKTEST103", refId=ref_id, fileName=name)
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    entry, text = open_zip(r.content, "Mkktest1*")
    assert entry == name.replace(".zip", ".json")
    rows = json.loads(text)
    assert rows and all(tuple(row) == JSON_FIELDS for row in rows)
    assert {(r["mbrAccNo"], r["subAccCode"], r["isin"], r["mbrId"]) for r in rows} == {
        ("1", "SERB", "TRAGARAN91N1", "TIB")
    }
    # Sample references already used are refused (RP045), as MKK would.
    _, again = await client.call(BALANCE, SAMPLE_BALANCE)
    assert code_of(again) == "RP045"


async def test_csv_content_has_the_guide_columns_and_honours_filters(
    client: MkkClient, state: SandboxState
) -> None:
    _, body = await client.balance(fileType="csv", zipPassword="Secret123", subAccNo="SERB")
    ref_id = body["refId"]
    _, body = await client.wait_final(ref_id)
    [name] = body["fileNames"]
    r = await client.content(ref_id, name)
    entry, text = open_zip(r.content, "Secret123")
    assert entry.endswith(".csv")
    reader = csv.reader(io.StringIO(text))
    assert tuple(next(reader)) == CSV_COLUMNS
    rows = list(reader)
    assert rows and all(row[3] == "SERB" for row in rows)
    assert all(row[0] == "20250505" and row[1] == "TIB" for row in rows)
    with pytest.raises(RuntimeError):
        open_zip(r.content, "Wrong1234")
    # Downloads of the same file are identical bytes.
    r2 = await client.content(ref_id, name)
    assert r2.content == r.content


async def test_bs040_for_an_unknown_file_and_rp015_for_another_members_report(
    client: MkkClient, other_client: MkkClient
) -> None:
    _, body = await client.balance()
    ref_id = body["refId"]
    await client.wait_final(ref_id)
    r = await client.content(ref_id, "MKK_RP166_19990101000000.zip")
    err = client.verify(r.text)
    assert (r.status_code, err["responseCode"]) == (422, "BS040")
    assert err["responseDesc"] == "Kayıt bulunamamıştır."
    r = await other_client.content(ref_id, "MKK_RP166_19990101000000.zip")
    assert other_client.verify(r.text)["responseCode"] == "RP015"
    _, sbody = await other_client.status(ref_id)
    assert code_of(sbody) == "RP018"


async def test_several_files_per_report(keys_dir: Path, tmp_path: Path) -> None:
    config = make_config(keys_dir, tmp_path / "multi", ledger={"rows": 300, "files_per_report": 3})
    app = create_app(config)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as h:
            c = MkkClient(h, keys_dir / "members/TIB/key.pem", keys_dir / "mkk/cert.pem")
            _, body = await c.balance()
            _, body = await c.wait_final(body["refId"])
            names = body["fileNames"]
            assert len(names) == 3 and len(set(names)) == 3
            total = 0
            for name in names:
                r = await c.content(sandbox_state(app).requests[1].ref_id or "", name)
                _, text = open_zip(r.content, "Secret123")
                total += len(text.splitlines()) - 1
            assert total == 300
    finally:
        sandbox_state(app).close()


async def test_report_error_fault_rate(client: MkkClient, http: httpx.AsyncClient) -> None:
    await http.put("/_sandbox/faults", json={"report_error_rate": 1.0, "endpoints": []})
    _, body = await client.balance()
    _, body = await client.wait_final(body["refId"])
    assert code_of(body) == "RP025"


async def test_reset_forgets_reports_and_files(
    client: MkkClient, http: httpx.AsyncClient, state: SandboxState
) -> None:
    _, body = await client.balance()
    ref_id = body["refId"]
    await client.wait_final(ref_id)
    assert (state.reports.root / ref_id).is_dir()
    await http.post("/_sandbox/reset")
    assert not (state.reports.root / ref_id).exists()
    r = await client.post(STATUS, {"requestHeader": client.header(), "refId": ref_id})
    assert r.status_code == 401  # the old token is forgotten too
    await client.auth()
    _, body = await client.status(ref_id)
    assert code_of(body) == "RP018"
