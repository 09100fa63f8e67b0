"""KEDA ScaledObjects: the replicated services scale on their consumer group's lag.

One Kafka trigger per topic the group consumes (KEDA takes the largest of them), never
more replicas than the partitions of each of those topics (a replica beyond that would
own no partition of it), never fewer than 2 (one replica may be drained). KEDA reads
lag with the service's own SCRAM user (its KafkaUser allows Describe on its group and
topics) over TLS, through a TriggerAuthentication per service. Retry tier topics are
left out on purpose: their messages wait for their due time, that lag is not work.
"""

from __future__ import annotations

from services.common.k8s.common import (
    KAFKA_CA_SECRET,
    Doc,
    kafka_access,
    kafka_user,
    labels,
    render,
)
from services.common.k8s.workloads import SIZING

BOOTSTRAP = "kopru-kafka-kafka-bootstrap.kafka:9093"
MIN_REPLICAS = 2
# Lag per replica that asks for one more: how many messages one replica clears in
# roughly a minute (an MKK call per request, a poll per report, a whole report
# download per ready event, a BKM/Moka call per payment request).
LAG_THRESHOLD: dict[str, int] = {
    "report-requester": 100,
    "status-poller": 200,
    "content-fetcher": 5,
    "payment-notifier": 100,
}


def _trigger_auth(name: str) -> Doc:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": f"{name}-kafka", "labels": labels(name)},
        "spec": {
            # The SASL user is the Deployment's own setting; Strimzi's Secret holds
            # only the password (and a JAAS line).
            "env": [
                {
                    "parameter": "username",
                    "name": "KOPRU_KAFKA__SASL_USERNAME",
                    "containerName": name,
                }
            ],
            "secretTargetRef": [
                {"parameter": "password", "name": kafka_user(name), "key": "password"},
                {"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"},
            ],
        },
    }


def _scaled_object(name: str) -> Doc:
    access = kafka_access(name)
    triggers = [
        {
            "type": "kafka",
            "authenticationRef": {"name": f"{name}-kafka"},
            "metadata": {
                "bootstrapServers": BOOTSTRAP,
                "consumerGroup": access.group,
                "topic": t.name,
                "lagThreshold": str(LAG_THRESHOLD[name]),
                "offsetResetPolicy": "earliest",
                "sasl": "scram_sha512",
                "tls": "enable",
            },
        }
        for t in access.group_topics
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": MIN_REPLICAS,
            "maxReplicaCount": max(MIN_REPLICAS, access.max_replicas),
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    # Scale down slowly: every scale event is a consumer group rebalance.
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": 300,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                        }
                    }
                }
            },
            "triggers": triggers,
        },
    }


def scaled_objects() -> dict[str, str]:
    """deploy/components/autoscaling/scaled-objects.yaml (prod overlay only)."""
    docs: list[Doc] = []
    for name, size in SIZING.items():
        if size.replicated:
            docs += [_trigger_auth(name), _scaled_object(name)]
    return {
        "deploy/components/autoscaling/scaled-objects.yaml": render(
            docs, "schemas/events/catalogue.py"
        )
    }
