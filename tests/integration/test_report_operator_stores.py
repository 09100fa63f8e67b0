"""resolve / retry and per-user auth attempts on the real state stores (SQLite and
PostgreSQL): what the operator's command writes is what a fresh connection (another
process: the requester, `kopru report status`) reads back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas.events import ReportRequested, ReportSubmitted
from services.auth_token.attempts import AttemptLog, password_fingerprint
from services.common.settings import StoreSettings
from services.common.stores.factory import open_state_store
from services.report_requester.handler import SCOPE, handle_requested
from services.report_requester.operator import resolve, retry
from tests.unit.test_report_operator import Requests, ambiguous
from tests.unit.test_report_requester import Fake, ok, req

pytestmark = pytest.mark.integration


async def test_resolve_and_retry_are_recorded_and_idempotent(
    store_settings: StoreSettings,
) -> None:
    rid_a, rid_b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    store = open_state_store(store_settings)
    await store.open()
    try:
        fa, fb = Fake([]), Fake([])
        fa.state = fb.state = store
        await ambiguous(fa, req(request_id=rid_a))
        await ambiguous(fb, req(request_id=rid_b))
        now = datetime.now(UTC)
        for _ in range(2):
            await resolve(store, fa.publish, "TIB", rid_a, "REF-A", now)
        requests = Requests()
        for _ in range(2):
            await retry(store, requests, "TIB", rid_b, now)
        assert len(requests.sent) == 1
        assert [type(e).__name__ for e in fa.published].count("ReportSubmitted") == 1
        fb.answers.append(ok())
        await handle_requested(requests.sent[0], 0, fb.deps())
    finally:
        await store.close()
    fresh = open_state_store(store_settings)  # another process's view
    await fresh.open()
    try:
        rec_a = await fresh.get(SCOPE, f"TIB:{rid_a}")
        rec_b = await fresh.get(SCOPE, f"TIB:{rid_b}")
    finally:
        await fresh.close()
    assert rec_a is not None and rec_b is not None
    assert rec_a["outcome"]["event"]["ref_id"] == "REF-A" and rec_a["published"]
    assert [h["then"] for h in rec_a["history"]] == ["resolved"]
    assert rec_b["generation"] == 1 and [h["then"] for h in rec_b["history"]] == ["retried"]
    sub = ReportSubmitted.model_validate(rec_b["outcome"]["event"])
    assert sub.sender_reference != rec_b["history"][0]["sender_reference"]
    assert ReportRequested.model_validate(rec_b["request"]).request_id == rid_b


async def test_each_mkk_user_has_its_own_attempt_counter(store_settings: StoreSettings) -> None:
    store = open_state_store(store_settings)
    await store.open()
    try:
        log = AttemptLog(store)
        member, a, b = "TIB", f"A{uuid.uuid4().hex[:6].upper()}", f"B{uuid.uuid4().hex[:6].upper()}"
        fa, fb = password_fingerprint("k", "pw-a"), password_fingerprint("k", "pw-b")
        await log.before_attempt(member, a, fa)
        await log.refused(member, a, fa, "0x00d30003")  # FAQ 15: never again with pw-a
        await log.before_attempt(member, b, fb)
        assert (await log.get(member, a)).is_blocked(fa, 2)
        assert not (await log.get(member, b)).is_blocked(fb, 2)  # the other user goes on
        await log.reset(member, a)  # `kopru auth reset --sender A...` frees A only
        assert not (await log.get(member, a)).is_blocked(fa, 2)
        assert (await log.get(member, b)).pending_fp == fb
    finally:
        await store.close()
