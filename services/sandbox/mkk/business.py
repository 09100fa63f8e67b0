"""The business step of each report call, once the message reached MKS (§5.1, §6.1, §6.2)."""

from __future__ import annotations

from schemas.mkk import BalanceReportRequest, ReportContentRequest, ReportStatusRequest
from services.sandbox.mkk.ledger import Ledger, is_valid_isin
from services.sandbox.mkk.outcome import Result
from services.sandbox.mkk.state import SandboxState


def balance_report(
    state: SandboxState, member: str, req: BalanceReportRequest, message_id: str
) -> Result:
    """§5.1: 0000 with a refId, or RP037 / RP038 / RP003."""
    if req.acc_class is not None and not Ledger.known_acc_class(req.acc_class):
        return Result(422, "RP037", message_id)
    if req.isin is not None and not is_valid_isin(req.isin):
        return Result(422, "RP038", message_id)
    now = state.clock.time()
    durations = state.config.durations
    if state.report_lock != "off":
        scope = member if state.report_lock == "member" else None
        if state.reports.in_progress(now, durations, scope):
            return Result(422, "RP003", message_id)
    fail = state.fail_next_reports > 0 or state.faults.report_fails()
    if state.fail_next_reports > 0:
        state.fail_next_reports -= 1
    report = state.reports.create(
        member=member,
        now=now,
        file_type=req.file_type,
        zip_password=req.zip_password.get_secret_value().encode(),
        process_date=req.process_date,
        filters=req.filters(),
        today=state.today(),
        fail=fail,
    )
    return Result(200, "0000", message_id, {"refId": report.ref_id}, ref_id=report.ref_id)


def report_status(
    state: SandboxState, member: str, req: ReportStatusRequest, message_id: str
) -> Result:
    """§6.1: the report's current code; 0000 lists its fileNames."""
    report = state.reports.get(req.ref_id)
    if report is None or report.member != member:
        return Result(422, "RP018", message_id, ref_id=req.ref_id)
    code = report.status(state.clock.time(), state.config.durations)
    if code != "0000":
        return Result(422, code, message_id, ref_id=req.ref_id)
    extra = {"fileNames": list(report.file_names)}
    return Result(200, code, message_id, extra, ref_id=req.ref_id)


def report_content(
    state: SandboxState, member: str, req: ReportContentRequest, message_id: str
) -> Result:
    """§6.2: the zip, or RP018 / RP015 / a pending or final status code / BS040."""
    report = state.reports.get(req.ref_id)
    if report is None:
        return Result(422, "RP018", message_id, ref_id=req.ref_id, file_name=req.file_name)
    if report.member != member:
        return Result(422, "RP015", message_id, ref_id=req.ref_id, file_name=req.file_name)
    code = report.status(state.clock.time(), state.config.durations)
    if code != "0000":
        return Result(422, code, message_id, ref_id=req.ref_id, file_name=req.file_name)
    if req.file_name not in report.file_names:
        return Result(422, "BS040", message_id, ref_id=req.ref_id, file_name=req.file_name)
    path = report.path(req.file_name)
    return Result(200, "0000", message_id, file=path, ref_id=req.ref_id, file_name=req.file_name)
