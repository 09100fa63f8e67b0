"""status-poller: mks.reports.submitted -> async-report-status (durable backoff) ->
ready / completed (no data) / failed."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, Field

from schemas.events import REPORTS_SUBMITTED, Event, ReportSubmitted, TopicSpec
from schemas.mkk import ReportStatusRequest
from services.common.kafka.broker import consumer_options, publish_event, subscribed_topics
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.outcome import MkkOutcome
from services.common.mkk.runtime import ReportServiceSettings, attempt_of, build_runtime
from services.common.observability.in_flight import IN_FLIGHT
from services.common.service import Service, new_service
from services.status_poller.handler import PollerDeps, handle_submitted


class PollerSettings(BaseModel):
    backoff_base_s: float = Field(default=5.0, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)


class Settings(ReportServiceSettings):
    poller: PollerSettings = Field(default_factory=PollerSettings)


def build(settings: Settings) -> Service:
    service = new_service(
        "status-poller",
        settings,
        description="Polls async-report-status with durable backoff until ready or 24 h.",
        max_attempts={REPORTS_SUBMITTED.name: None},  # bounded by the refId's 24 h
    )
    broker = service.broker
    rt = build_runtime(service, settings)

    async def publish(spec: TopicSpec, event: Event) -> None:
        await publish_event(broker, spec, event)

    async def poll(req: ReportStatusRequest, member: str, sender: str) -> MkkOutcome:
        return await rt.with_token(
            member, sender, lambda tok: rt.client.report_status(req, tok.token)
        )

    p = settings.poller
    deps = PollerDeps(
        state=rt.state,
        publish=publish,
        poll=poll,
        backoff=Backoff(base_s=p.backoff_base_s, cap_s=p.backoff_cap_s),
        service_hours=settings.mkk.service_hours,
    )

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *subscribed_topics(REPORTS_SUBMITTED.name, settings.kafka, service.group),
        **consumer_options(settings.kafka, service.group),
    )
    async def on_submitted(event: ReportSubmitted, message: KafkaMessage) -> None:
        rec = message.raw_message
        holder = f"{getattr(rec, 'topic', '?')}:{getattr(rec, 'partition', '?')}:" + str(
            getattr(rec, "offset", "?")
        )
        key = f"{event.member}:{event.request_id}"
        with IN_FLIGHT.tracking("polling", key, event.submitted_at):
            await handle_submitted(event, attempt_of(message), holder, deps)

    return service
