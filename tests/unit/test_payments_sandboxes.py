"""The BKM and Moka sandboxes on their own: authentication errors, the listed codes, the
BKM SOAP checks (MAC, sync) and the CLI commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from schemas.bkm import QueryPaymentResultRequest, format_ts
from schemas.moka import CREATE_POS_REQUEST_ERRORS
from services.cli.sandbox import sandbox_app
from services.common.bkm import soap as bkm_soap
from services.common.bkm.signature import BkmSigner
from services.common.moka.auth import check_key
from services.common.signing.certs import generate_rsa_key, load_private_key
from services.sandbox.bkm.app import SERVICE_PATH, BkmSandboxConfig
from services.sandbox.bkm.app import create_app as bkm_app
from services.sandbox.bkm.keys import ensure_demo_keys
from services.sandbox.moka.app import MokaSandboxConfig
from services.sandbox.moka.app import create_app as moka_app
from tests.unit.test_payments_moka import application


def auth(password: str = "demo-password", dealer: str = "1356") -> dict[str, str]:
    return {
        "DealerCode": dealer,
        "Username": "kopru-demo",
        "Password": password,
        "CheckKey": check_key(dealer, "kopru-demo", password),
    }


async def moka_post(app: Any, body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        resp = await client.post("http://moka/Dealer/CreateMokaPosRequest", json=body)
    result: dict[str, Any] = resp.json()
    return result


async def test_moka_sandbox_authentication_codes() -> None:
    app = moka_app(MokaSandboxConfig(not_allowed_dealers=frozenset({"1356"})))
    body = {"MokaPosRequest": application()}
    missing = await moka_post(app, body)
    wrong = await moka_post(app, {**body, "DealerAuthentication": auth("nope")})
    bad_key = await moka_post(
        app, {**body, "DealerAuthentication": {**auth(), "CheckKey": "0" * 64}}
    )
    blocked = await moka_post(app, {**body, "DealerAuthentication": auth()})
    assert [r["ResultCode"].rsplit(".", 1)[1] for r in (missing, wrong, bad_key, blocked)] == [
        "InvalidRequest",
        "InvalidAccount",
        "InvalidAccount",
        "DealerNotAllowed",
    ]
    assert all(r["Data"] is None for r in (missing, wrong, bad_key, blocked))


async def test_moka_sandbox_answers_listed_codes_only() -> None:
    app = moka_app()
    ok = await moka_post(app, {"DealerAuthentication": auth(), "MokaPosRequest": application()})
    email = await moka_post(
        app, {"DealerAuthentication": auth(), "MokaPosRequest": application(Email="")}
    )
    long_name = await moka_post(
        app,
        {"DealerAuthentication": auth(), "MokaPosRequest": application(ContactName="x" * 60)},
    )
    assert ok["ResultCode"] == "Success" and ok["Data"] == {"MokaPosRequestId": 1787}
    assert email == {
        "Data": None,
        "ResultCode": "Dealer.CreateMokaPosRequest.EmailRequired",
        "ResultMessage": "",
        "Exception": None,
    }
    assert long_name["ResultCode"] in CREATE_POS_REQUEST_ERRORS


@pytest.fixture(scope="module")
def bkm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bkm-sb")
    ensure_demo_keys(d)
    return d


async def bkm_soap_post(app: Any, body: bytes) -> bkm_soap.SoapCall:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        resp = await client.post("http://bkm" + SERVICE_PATH, content=body)
    return bkm_soap.parse(resp.content)


async def test_bkm_sandbox_refuses_a_wrong_mac_and_an_unsynchronised_ts(bkm_dir: Path) -> None:
    app = bkm_app(BkmSandboxConfig(state_dir=bkm_dir))
    merchant = BkmSigner(load_private_key(bkm_dir / "merchant.key"))
    stranger = BkmSigner(generate_rsa_key(2048))
    fresh = QueryPaymentResultRequest(mId="m", t="t1", ts="20990101-00:00:00")
    good_ts = format_ts(datetime.now(UTC), "Europe/Istanbul")
    cases = {
        "ok": merchant.sign(fresh.model_copy(update={"ts": good_ts})),
        "mac": stranger.sign(fresh.model_copy(update={"ts": good_ts})),
        "sync": merchant.sign(fresh),
    }
    got = {}
    for name, req in cases.items():
        call = await bkm_soap_post(app, bkm_soap.query_payment_result_xml(req))
        res = bkm_soap.parse_result(call)
        got[name] = (res.resMsg if res else None, call.fields.get("success"))
    assert got == {
        "ok": ("Success", "false"),
        "mac": ("MAC verification fail", None),
        "sync": ("Request Not Synchronized", None),
    }


async def test_bkm_sandbox_pay_needs_a_confirmation_url(bkm_dir: Path) -> None:
    app = bkm_app(BkmSandboxConfig(state_dir=bkm_dir))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        no_url = await client.post("http://bkm/_sandbox/pay", json={"token": "t9"})
        dropped = await client.post("http://bkm/_sandbox/pay", json={"token": "t9", "drop": True})
        shown = await client.get("http://bkm/_sandbox/payments/t9")
        bad = await client.post("http://bkm/_sandbox/pay", json={"outcome": "maybe"})
    assert no_url.status_code == 422
    assert dropped.json()["dropped"] is True
    assert shown.json()["paid"] is True
    assert bad.status_code == 422


def test_cli_has_bkm_and_moka_commands() -> None:
    runner = CliRunner()
    for name in ("bkm", "moka"):
        result = runner.invoke(sandbox_app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "--port" in result.output


async def test_moka_sandbox_admin_lives_under_sandbox_like_the_others() -> None:
    app = moka_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        fault = await client.post("http://moka/_sandbox/fault", json={"next": "EX"})
        failed = await client.post(
            "http://moka/Dealer/CreateMokaPosRequest",
            json={"DealerAuthentication": auth(), "MokaPosRequest": application()},
        )
        seen = await client.get("http://moka/_sandbox/requests")
        old = await client.get("http://moka/admin/requests")
    assert fault.status_code == 200 and failed.json()["ResultCode"] == "EX"
    assert seen.status_code == 200 and isinstance(seen.json(), list)
    assert old.status_code == 404


@pytest.mark.parametrize("how", ["option", "file"])
def test_moka_sandbox_password_from_an_option_or_a_file(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from services.cli import app as cli
    from services.sandbox.moka import server

    started: list[MokaSandboxConfig] = []
    monkeypatch.setattr(server, "serve", lambda config, **_: started.append(config))
    (tmp_path / "pw").write_text("s3cret-dealer\n")
    args = (
        ["--password", "s3cret-dealer"]
        if how == "option"
        else ["--password-file", str(tmp_path / "pw")]
    )
    result = CliRunner().invoke(cli, ["sandbox", "moka", *args])
    assert result.exit_code == 0, result.output
    assert [c.password for c in started] == ["s3cret-dealer"]
