"""NetworkPolicies and the Ingress for BKM.

Default deny in both directions for every kopru pod, then only:
- egress to DNS (kube-dns), to the Kafka brokers (Strimzi pods of the cluster, TLS
  listener 9093), to PostgreSQL (port 5432, pods labelled app.kubernetes.io/name=postgres);
- egress to the provider each service calls, by address: NetworkPolicy cannot name a
  host, so each provider is an ipBlock whose CIDRs the prod overlay sets to the
  provider's published addresses (the base holds TEST-NET-3, 203.0.113.0/24, which
  reaches nothing: a fresh install fails closed, never open);
- ingress on the HTTP port from Prometheus (namespace `monitoring`) for /metrics; to
  payment-notifier also from the ingress controller (namespace `ingress-nginx`): BKM's
  confirmation and merchInfo calls. Kubelet probes are not subject to NetworkPolicy.
"""

from __future__ import annotations

from services.common.k8s.common import (
    HTTP_PORT,
    KAFKA_CLUSTER,
    KAFKA_NAMESPACE,
    PART_OF,
    Doc,
    labels,
    render,
)

PLACEHOLDER_CIDR = "203.0.113.0/24"  # TEST-NET-3 (RFC 5737): replaced by the overlay
# Which provider each service calls, and on which ports (BKM's preprod SOAP is on 9620).
PROVIDERS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "mkk": (("auth-token", "report-requester", "status-poller", "content-fetcher"), (443,)),
    "bkm": (("payment-notifier",), (443, 9620)),
    "moka": (("payment-notifier",), (443,)),
}
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
# BKM's calls into payment-notifier (services/payment_notifier/http_routes.py).
BKM_PATHS = ("/bkm/confirmation", "/bkm/merchinfo")
BKM_HOST = "bkm.kopru.local"

ALL_KOPRU = {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}}


def _ns(name: str) -> Doc:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def _policy(name: str, selector: Doc, spec: Doc) -> Doc:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {"podSelector": selector, **spec},
    }


def _tcp(*ports: int) -> list[Doc]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def network_policies() -> dict[str, str]:
    docs = [
        _policy("kopru-default-deny", ALL_KOPRU, {"policyTypes": ["Ingress", "Egress"]}),
        _policy(
            "kopru-egress-dns",
            ALL_KOPRU,
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": _ns("kube-system"),
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        _policy(
            "kopru-egress-kafka",
            ALL_KOPRU,
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": _ns(KAFKA_NAMESPACE),
                                "podSelector": {
                                    "matchLabels": {
                                        "strimzi.io/cluster": KAFKA_CLUSTER,
                                        "strimzi.io/kind": "Kafka",
                                    }
                                },
                            }
                        ],
                        "ports": _tcp(9093),
                    }
                ],
            },
        ),
        _policy(
            "kopru-egress-postgres",
            ALL_KOPRU,
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}}}
                        ],
                        "ports": _tcp(5432),
                    }
                ],
            },
        ),
        _policy(
            "kopru-ingress-metrics",
            ALL_KOPRU,
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": _ns(MONITORING_NAMESPACE)}],
                        "ports": _tcp(HTTP_PORT),
                    }
                ],
            },
        ),
        _policy(
            "payment-notifier-ingress-bkm",
            {"matchLabels": labels("payment-notifier")},
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": _ns(INGRESS_NAMESPACE),
                                "podSelector": {
                                    "matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}
                                },
                            }
                        ],
                        "ports": _tcp(HTTP_PORT),
                    }
                ],
            },
        ),
    ]
    for provider, (services, ports) in PROVIDERS.items():
        docs.append(
            _policy(
                f"kopru-egress-{provider}",
                {
                    "matchExpressions": [
                        {
                            "key": "app.kubernetes.io/name",
                            "operator": "In",
                            "values": list(services),
                        }
                    ]
                },
                {
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [{"ipBlock": {"cidr": PLACEHOLDER_CIDR}}], "ports": _tcp(*ports)}
                    ],
                },
            )
        )
    return {"deploy/base/network-policies.yaml": render(docs, "services/common/k8s/network.py")}


def bkm_ingress() -> dict[str, str]:
    """deploy/base/ingress.yaml: BKM's two calls, TLS only, exact paths (nothing else of
    payment-notifier, /metrics included, is reachable from outside)."""
    doc: Doc = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "payment-notifier-bkm",
            "labels": labels("payment-notifier"),
            "annotations": {
                "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
                # BKM's calls are small XML/form bodies: refuse anything large at the edge.
                "nginx.ingress.kubernetes.io/proxy-body-size": "64k",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [BKM_HOST], "secretName": "kopru-bkm-tls"}],
            "rules": [
                {
                    "host": BKM_HOST,
                    "http": {
                        "paths": [
                            {
                                "path": path,
                                "pathType": "Exact",
                                "backend": {
                                    "service": {
                                        "name": "payment-notifier",
                                        "port": {"name": "http"},
                                    }
                                },
                            }
                            for path in BKM_PATHS
                        ]
                    },
                }
            ],
        },
    }
    return {"deploy/base/ingress.yaml": render([doc], "services/common/k8s/network.py")}
