"""Kubernetes objects generated from the code and checked for drift like the other
contracts (`kopru contracts write|check`): Deployments and Services from the service
registry; KafkaTopics, KafkaUsers (ACLs) and KEDA ScaledObjects from the topic catalogue;
NetworkPolicies, PodDisruptionBudgets and BKM's Ingress. Hand-written kustomizations in
deploy/ assemble them (base, overlays local and prod)."""

from __future__ import annotations

from collections.abc import Callable

from services.common.k8s.autoscaling import scaled_objects
from services.common.k8s.kafka_access import kafka_users, strimzi_topics
from services.common.k8s.network import bkm_ingress, network_policies
from services.common.k8s.workloads import disruption_budgets, k8s_services

K8S_GENERATORS: tuple[Callable[[], dict[str, str]], ...] = (
    strimzi_topics,
    kafka_users,
    k8s_services,
    disruption_budgets,
    network_policies,
    bkm_ingress,
    scaled_objects,
)

__all__ = ["K8S_GENERATORS"]
