"""Per service: a ServiceAccount, a Deployment (`kopru run <name>`, hardened), a Service;
a PodDisruptionBudget for the replicated ones.

Memory requests and limits come from RSS measured on this code (`kopru demo`, the e2e
kill test with 30 reports and the 1,000-confirmation payments e2e test, sampled every
0.2 s): peak RSS per process was auth-token 81 MiB, report-requester 83, status-poller
83, content-fetcher 95, payment-notifier 91 (steady state 70-87 MiB). Request = the peak
rounded up (128 Mi), so the scheduler reserves what a pod really uses; limit = 2x the
request (content-fetcher 3x: it decompresses report files and buffers row batches), so
a burst or an oversize record fits but a leak ends in an OOM kill and a restart instead
of starving the node. No CPU limit (CFS throttling would stall consumers' heartbeats and
the signing threads); CPU requests are set for the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.k8s.common import (
    HTTP_PORT,
    KAFKA_CA_DIR,
    KAFKA_CA_SECRET,
    SECRETS_DIR,
    Doc,
    kafka_user,
    labels,
    render,
)

IMAGE = "registry.local/kopru"
UID = 10001
DATA_DIR = "/var/lib/kopru"


@dataclass(frozen=True)
class Sizing:
    cpu_request: str
    memory_request: str
    memory_limit: str
    replicated: bool  # more than one replica in prod: PDB, topology spread, KEDA
    scratch: str = "1Gi"  # the data emptyDir (SQLite in the local overlay, downloads)


SIZING: dict[str, Sizing] = {
    # The only holder of the MKK password: one replica (three wrong passwords lock the
    # member's user at MKK; one keeper renews each token).
    "auth-token": Sizing("50m", "128Mi", "256Mi", replicated=False),
    "report-requester": Sizing("100m", "128Mi", "256Mi", replicated=True),
    "status-poller": Sizing("100m", "128Mi", "256Mi", replicated=True),
    # Report files (up to KOPRU_FETCHER__MAX_FILE_BYTES, 2 GiB) are downloaded to disk,
    # never held in memory: the data volume holds two at once.
    "content-fetcher": Sizing("200m", "128Mi", "384Mi", replicated=True, scratch="5Gi"),
    "payment-notifier": Sizing("100m", "128Mi", "256Mi", replicated=True),
}


def image_ref() -> str:
    from importlib.metadata import version

    return f"{IMAGE}:{version('kopru')}"


def container_security() -> Doc:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _volumes(name: str, size: Sizing) -> list[Doc]:
    return [
        {
            # The service's own secrets (out of band) and its Kafka password (Strimzi's
            # KafkaUser Secret), as files named like the settings (kafka__sasl_password).
            "name": "secrets",
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"secret": {"name": f"kopru-{name}", "optional": True}},
                    {
                        "secret": {
                            "name": kafka_user(name),
                            "items": [{"key": "password", "path": "kafka__sasl_password"}],
                        }
                    },
                ],
            },
        },
        {
            "name": "kafka-ca",
            "secret": {
                "secretName": KAFKA_CA_SECRET,
                "defaultMode": 0o444,
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "data", "emptyDir": {"sizeLimit": size.scratch}},
    ]


# Files each service reads from its own Secret (kopru-<service>, mounted at SECRETS_DIR):
# setting -> file name in the Secret (deploy/README.md lists them).
SECRET_FILES: dict[str, dict[str, str]] = {
    "auth-token": {"KOPRU_MKK_AUTH__PASSWORD_FILE": "mkk-password"},
    **{
        name: {
            "KOPRU_MKK_SIGNING__PRIVATE_KEY_FILE": "mkk-member.key",
            "KOPRU_MKK_SIGNING__CERTIFICATE_FILE": "mkk-member.crt",
            "KOPRU_MKK_SIGNING__MKK_CERTIFICATE_FILE": "mkk.crt",
        }
        for name in ("report-requester", "status-poller", "content-fetcher")
    },
    "payment-notifier": {
        "KOPRU_BKM__PRIVATE_KEY_FILE": "bkm-merchant.key",
        "KOPRU_BKM__BKM_PUBLIC_KEY_FILE": "bkm-public.pem",
    },
}


def _own_env(name: str) -> list[Doc]:
    env = [
        {"name": var, "value": f"{SECRETS_DIR}/{file}"}
        for var, file in SECRET_FILES.get(name, {}).items()
    ]
    if name == "content-fetcher":
        env.append({"name": "KOPRU_FETCHER__TMP_DIR", "value": f"{DATA_DIR}/downloads"})
    return env


def _spread(name: str) -> list[Doc]:
    selector = {"matchLabels": labels(name)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
            "matchLabelKeys": ["pod-template-hash"],
        },
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": selector,
            "matchLabelKeys": ["pod-template-hash"],
        },
    ]


def deployment(name: str, summary: str) -> Doc:
    size = SIZING[name]
    probe: dict[str, Any] = {"httpGet": {"path": "/healthz", "port": "http"}}
    container: Doc = {
        "name": name,
        "image": image_ref(),
        "imagePullPolicy": "Always",
        "args": ["run", name],
        "ports": [{"name": "http", "containerPort": HTTP_PORT}],
        "envFrom": [{"configMapRef": {"name": "kopru-config"}}],
        "env": [
            {"name": "KOPRU_SERVICE_NAME", "value": name},
            {"name": "KOPRU_HTTP__HOST", "value": "0.0.0.0"},
            {"name": "KOPRU_HTTP__PORT", "value": str(HTTP_PORT)},
            {"name": "KOPRU_SECRETS_DIR", "value": SECRETS_DIR},
            {"name": "KOPRU_KAFKA__SASL_USERNAME", "value": kafka_user(name)},
            {"name": "KOPRU_KAFKA__SSL_CAFILE", "value": f"{KAFKA_CA_DIR}/ca.crt"},
            *_own_env(name),
        ],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {**probe, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "resources": {
            "requests": {"cpu": size.cpu_request, "memory": size.memory_request},
            "limits": {"memory": size.memory_limit},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
            {"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (the pod's own emptyDir)
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }
    pod: Doc = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 40,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": _volumes(name, size),
    }
    spec: Doc = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": labels(name)},
        # Start the new pod before stopping an old one: consumers hand partitions over.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": labels(name), "annotations": {"kopru/summary": summary}},
            "spec": pod,
        },
    }
    # Replicated services leave `replicas` to KEDA's HPA (prod) or the default of 1
    # (local): a value here would reset the HPA's choice on every apply.
    if size.replicated:
        pod["topologySpreadConstraints"] = _spread(name)
    else:
        spec["replicas"] = 1
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": spec,
    }


def k8s_services() -> dict[str, str]:
    """deploy/base/services.yaml: ServiceAccount, Deployment and Service per service."""
    from services.registry import SERVICES

    docs: list[Doc] = []
    for name, e in SERVICES.items():
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "labels": labels(name)},
                # No kopru service talks to the Kubernetes API.
                "automountServiceAccountToken": False,
            }
        )
        docs.append(deployment(name, e.summary))
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": labels(name)},
                "spec": {
                    "selector": labels(name),
                    "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http"}],
                },
            }
        )
    return {"deploy/base/services.yaml": render(docs, "services/registry.py")}


def disruption_budgets() -> dict[str, str]:
    """deploy/base/pod-disruption-budgets.yaml: at most one replica of each replicated
    service down at a time for voluntary disruptions (node drains, upgrades)."""
    docs: list[Doc] = [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "labels": labels(name)},
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": labels(name)},
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        }
        for name, size in SIZING.items()
        if size.replicated
    ]
    return {"deploy/base/pod-disruption-budgets.yaml": render(docs, "services/common/k8s")}
