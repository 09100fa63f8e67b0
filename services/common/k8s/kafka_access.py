"""Strimzi resources derived from the topic catalogue: a KafkaTopic per planned topic and
a KafkaUser per service whose ACLs allow exactly that service's topics.

The base is production: replication factor 3 and min.insync.replicas 2 (the local
overlay patches both to 1 for its single broker). A service's user may:
- read each topic its group consumes, read and write its own retry tiers of it (a
  prefix ACL `<topic>.retry.<group>.`, so changing KOPRU_KAFKA__RETRY_TIERS_S needs no
  new ACL) and write the topic's DLQ;
- read, without a group, the compacted topics it keeps as a table (the token topic);
- write the topics it produces;
- use its own consumer group, named after the service.
Nothing else: no Create (the Topic Operator owns topics), no cluster operation (Kafka
>= 3.0 lets an idempotent producer write with Write on the topic alone, KIP-679).
"""

from __future__ import annotations

from services.common.k8s.common import (
    KAFKA_CLUSTER,
    Doc,
    KafkaAccess,
    kafka_access,
    kafka_user,
    labels,
    render,
)
from services.common.kafka.topic_admin import plan
from services.common.settings import KafkaSettings

PROD_KAFKA = KafkaSettings(replication_factor=3)
STRIMZI = "kafka.strimzi.io/v1beta2"


def min_insync_replicas(replication_factor: int) -> int:
    """One replica may be down and writes with acks=all still succeed."""
    return max(1, replication_factor - 1)


def strimzi_topics(settings: KafkaSettings = PROD_KAFKA) -> dict[str, str]:
    rf = settings.replication_factor
    docs: list[Doc] = []
    for t in plan(settings):
        config = dict(t.config)
        config.setdefault("min.insync.replicas", str(min_insync_replicas(rf)))
        docs.append(
            {
                "apiVersion": STRIMZI,
                "kind": "KafkaTopic",
                "metadata": {
                    "name": t.name.replace(".", "-").replace("_", "-"),
                    "labels": {"strimzi.io/cluster": KAFKA_CLUSTER},
                },
                "spec": {
                    "topicName": t.name,
                    "partitions": t.partitions,
                    "replicas": rf,
                    "config": config,
                },
            }
        )
    return {"deploy/base/kafka-topics.yaml": render(docs, "schemas/events/catalogue.py")}


def _acl(kind: str, name: str, ops: list[str], pattern: str = "literal") -> Doc:
    return {
        "resource": {"type": kind, "name": name, "patternType": pattern},
        "operations": ops,
        "host": "*",
    }


def acls(access: KafkaAccess) -> list[Doc]:
    out: list[Doc] = []
    for t in access.group_topics:
        out.append(_acl("topic", t.name, ["Describe", "Read"]))
        out.append(
            _acl(
                "topic", f"{t.name}.retry.{access.group}.", ["Describe", "Read", "Write"], "prefix"
            )
        )
        out.append(_acl("topic", t.dlq, ["Describe", "Write"]))
    for t in access.table_topics:
        out.append(_acl("topic", t.name, ["Describe", "Read"]))
    for t in access.produced:
        out.append(_acl("topic", t.name, ["Describe", "Write"]))
    if access.group_topics:
        out.append(_acl("group", access.group, ["Describe", "Read"]))
    return _merge(out)


def _merge(entries: list[Doc]) -> list[Doc]:
    """One entry per resource (a topic both read as a table and produced gets both)."""
    merged: dict[tuple[str, str, str], Doc] = {}
    for e in entries:
        r = e["resource"]
        key = (r["type"], r["name"], r["patternType"])
        if key in merged:
            ops = merged[key]["operations"]
            merged[key]["operations"] = sorted(set(ops) | set(e["operations"]))
        else:
            merged[key] = {**e, "operations": sorted(e["operations"])}
    return list(merged.values())


def kafka_users() -> dict[str, str]:
    """deploy/base/kafka-users.yaml: one SCRAM-SHA-512 KafkaUser per service."""
    from services.registry import SERVICES

    docs: list[Doc] = []
    for name in SERVICES:
        docs.append(
            {
                "apiVersion": STRIMZI,
                "kind": "KafkaUser",
                "metadata": {
                    "name": kafka_user(name),
                    "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **labels(name)},
                },
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls(kafka_access(name))},
                },
            }
        )
    return {"deploy/base/kafka-users.yaml": render(docs, "schemas/events/catalogue.py")}
