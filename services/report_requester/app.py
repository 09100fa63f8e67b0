"""report-requester: mks.reports.requested -> MKK balance-report -> submitted / failed."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, Field

from schemas.events import REPORTS_REQUESTED, Event, ReportRequested, TopicSpec
from services.common.kafka.broker import consumer_options, publish_event, subscribed_topics
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.runtime import ReportServiceSettings, attempt_of, build_runtime
from services.common.service import Service, new_service
from services.report_requester.handler import RequesterDeps, handle_requested


class RequesterSettings(BaseModel):
    max_attempts: int = Field(default=30, ge=1)
    backoff_base_s: float = Field(default=5.0, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)


class Settings(ReportServiceSettings):
    requester: RequesterSettings = Field(default_factory=RequesterSettings)


def build(settings: Settings) -> Service:
    service = new_service(
        "report-requester",
        settings,
        description="Validates report requests and calls MKK balance-report once per request.",
        max_attempts={REPORTS_REQUESTED.name: None},  # the handler bounds its attempts
    )
    broker = service.broker
    rt = build_runtime(service, settings)

    async def publish(spec: TopicSpec, event: Event) -> None:
        await publish_event(broker, spec, event)

    r = settings.requester
    deps = RequesterDeps(
        state=rt.state,
        publish=publish,
        get_token=rt.tokens.get,
        rejected_token=rt.tokens.rejected,
        send=rt.client.balance_report,
        zip_secret=settings.pipeline.zip_key.get_secret_value(),
        service_hours=settings.mkk.service_hours,
        max_attempts=r.max_attempts,
        backoff=Backoff(base_s=r.backoff_base_s, cap_s=r.backoff_cap_s),
    )

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *subscribed_topics(REPORTS_REQUESTED.name, settings.kafka, service.group),
        **consumer_options(settings.kafka, service.group),
    )
    async def on_requested(event: ReportRequested, message: KafkaMessage) -> None:
        attempt = attempt_of(message)
        await handle_requested(event, attempt, deps)

    return service
