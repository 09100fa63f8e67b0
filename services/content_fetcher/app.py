"""content-fetcher: mks.reports.ready -> async-report-content -> rows + completed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, Field

from schemas.codes import Action
from schemas.events import REPORTS_READY, Event, ReportReady, TopicSpec
from schemas.mkk import ReportContentRequest
from services.common.kafka.broker import consumer_options, publish_event, subscribed_topics
from services.common.kafka.retry_tiers import Backoff
from services.common.mkk.client import ContentAnswer
from services.common.mkk.runtime import ReportServiceSettings, attempt_of, build_runtime
from services.common.observability.in_flight import IN_FLIGHT
from services.common.service import Service, new_service
from services.content_fetcher.handler import FetcherDeps, handle_ready
from services.content_fetcher.rows_publisher import RowsPublisher


class FetcherSettings(BaseModel):
    batch_size: int = Field(default=1000, ge=1, le=5000)
    max_file_bytes: int = Field(default=2 * 1024**3, ge=1024)
    tmp_dir: Path | None = None
    linger_ms: int = Field(default=20, ge=0, le=1000)
    max_attempts: int = Field(default=30, ge=1)
    # Between content retries (transient MKK answers, cut downloads): capped exponential.
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)


class Settings(ReportServiceSettings):
    fetcher: FetcherSettings = Field(default_factory=FetcherSettings)


def build(settings: Settings) -> Service:
    service = new_service(
        "content-fetcher",
        settings,
        description="Downloads, decrypts and streams report rows in batches.",
        max_attempts={REPORTS_READY.name: None},  # the handler bounds its attempts
    )
    broker = service.broker
    rt = build_runtime(service, settings)
    f = settings.fetcher
    rows = RowsPublisher(settings.kafka, client_id=service.name, linger_ms=f.linger_ms)
    service.on_start.append(rows.start)
    service.on_stop.append(rows.stop)

    async def publish(spec: TopicSpec, event: Event) -> None:
        await publish_event(broker, spec, event)

    @asynccontextmanager
    async def fetch(
        req: ReportContentRequest, member: str, sender: str
    ) -> AsyncIterator[ContentAnswer]:
        tok = await rt.tokens.get(member, sender)
        async with rt.client.report_content(req, tok.token) as answer:
            if answer.outcome.action is not Action.REAUTH:
                yield answer
                return
        tok = await rt.tokens.rejected(member, sender, tok.jti)  # one refresh, one retry
        async with rt.client.report_content(req, tok.token) as answer:
            yield answer

    deps = FetcherDeps(
        state=rt.state,
        publish=publish,
        fetch=fetch,
        rows=rows,  # type: ignore[arg-type]
        zip_secret=settings.pipeline.zip_key.get_secret_value(),
        batch_size=f.batch_size,
        max_file_bytes=f.max_file_bytes,
        tmp_dir=f.tmp_dir,
        service_hours=settings.mkk.service_hours,
        max_attempts=f.max_attempts,
        backoff=Backoff(base_s=f.backoff_base_s, cap_s=f.backoff_cap_s),
    )

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *subscribed_topics(REPORTS_READY.name, settings.kafka, service.group),
        **consumer_options(settings.kafka, service.group),
    )
    async def on_ready(event: ReportReady, message: KafkaMessage) -> None:
        key = f"{event.member}:{event.request_id}"
        with IN_FLIGHT.tracking("fetching", key, event.submitted_at):
            await handle_ready(event, attempt_of(message), deps)

    return service
