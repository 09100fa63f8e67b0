"""The Kubernetes objects generated from the code (services/common/k8s) say what the code
does: each KafkaUser allows exactly what its service really consumes and publishes, KEDA
never scales past the partitions, the pods are locked down, the SASL password lands where
the settings read it, and BKM's Ingress paths are payment-notifier's routes."""

from __future__ import annotations

import fnmatch
import importlib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.events import BY_NAME, CATALOGUE
from services.common.k8s.autoscaling import scaled_objects
from services.common.k8s.common import kafka_access, kafka_user
from services.common.k8s.kafka_access import PROD_KAFKA, kafka_users, strimzi_topics
from services.common.k8s.network import BKM_PATHS, bkm_ingress, network_policies
from services.common.k8s.workloads import SIZING, disruption_budgets, k8s_services
from services.common.kafka.retry_tiers import retry_topics
from services.common.kafka.topic_admin import plan
from services.common.service import Service
from services.common.settings import BaseServiceSettings, load_settings
from services.registry import SERVICES

Doc = dict[str, Any]


def _docs(generated: dict[str, str]) -> list[Doc]:
    (text,) = generated.values()
    return [d for d in yaml.safe_load_all(text) if d]


def _by(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@cache
def _service(name: str) -> Service:
    module = importlib.import_module(SERVICES[name].module)
    # Defaults without validation: the wiring, not the secrets a real start needs.
    service: Service = module.build(module.Settings.model_construct())
    return service


def _allowed(user: Doc, kind: str, name: str, op: str) -> bool:
    """Kafka's simple authorizer: a literal or prefix ACL naming the resource and the op."""
    for acl in user["spec"]["authorization"]["acls"]:
        r = acl["resource"]
        if r["type"] != kind or op not in acl["operations"]:
            continue
        if r["patternType"] == "literal" and r["name"] == name:
            return True
        if r["patternType"] == "prefix" and name.startswith(r["name"]):
            return True
    return False


USERS = _by(_docs(kafka_users()), "KafkaUser")


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_user_may_consume_what_its_service_subscribes_to(name: str) -> None:
    service = _service(name)
    user = USERS[kafka_user(name)]
    subscribed = service.topics()
    # The catalogue's view (what the ACLs come from) is what the service really does.
    main = {t for t in subscribed if ".retry." not in t}
    assert main == {t.name for t in kafka_access(name).group_topics}
    for topic in subscribed:
        assert _allowed(user, "topic", topic, "Read"), topic
    assert _allowed(user, "group", service.group, "Read")
    # Its retry tiers (any tier delays, the settings can change them) and DLQs are its own.
    for topic in main:
        for retry in retry_topics(topic, name, [0.5, 1.0, 7.0, 300.0]):
            assert _allowed(user, "topic", retry, "Read")
            assert _allowed(user, "topic", retry, "Write")
        assert _allowed(user, "topic", BY_NAME[topic].dlq, "Write")


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_user_may_do_nothing_else(name: str) -> None:
    user = USERS[kafka_user(name)]
    ops = {op for acl in user["spec"]["authorization"]["acls"] for op in acl["operations"]}
    assert ops <= {"Describe", "Read", "Write"}
    assert not any(a["resource"]["type"] in ("cluster", "transactionalId") for a in
                   user["spec"]["authorization"]["acls"])  # fmt: skip
    for other in SERVICES:
        if other != name:
            assert not _allowed(user, "group", other, "Read")
    for t in plan(PROD_KAFKA):
        spec = next(s for s in CATALOGUE if t.name.startswith(s.name))
        if ".retry." in t.name:
            owner = t.name.split(".retry.", 1)[1].split(".", 1)[0]
            # The plan also lists tiers for the token table, which is read without a group
            # and never retried: no ACL for those.
            own = owner == name and spec.cleanup_policy != "compact"
            assert _allowed(user, "topic", t.name, "Read") == own, t.name
            continue
        writes = _allowed(user, "topic", t.name, "Write")
        if t.name == spec.dlq:
            assert writes == (name in spec.consumers and spec.cleanup_policy != "compact")
        else:
            assert writes == (name in spec.producers), t.name
            reads = _allowed(user, "topic", t.name, "Read")
            table = spec.cleanup_policy == "compact" and name in spec.producers
            assert reads == (name in spec.consumers or table), t.name


def test_auth_token_reads_its_own_compacted_token_topic() -> None:
    # It reloads its tokens from the topic at start (TokenCache), without a group.
    user = USERS[kafka_user("auth-token")]
    assert _allowed(user, "topic", "mks.auth.tokens", "Read")
    assert _allowed(user, "topic", "mks.auth.tokens", "Write")
    assert not _allowed(user, "topic", "mks.auth.tokens.dlq", "Write")


def test_topics_are_replicated_three_times_with_two_in_sync() -> None:
    topics = _docs(strimzi_topics())
    assert [t["spec"]["topicName"] for t in topics] == [t.name for t in plan(PROD_KAFKA)]
    for t in topics:
        assert t["spec"]["replicas"] == 3
        assert t["spec"]["config"]["min.insync.replicas"] == "2"


def test_keda_never_scales_past_the_partitions_and_reads_lag_as_the_service() -> None:
    docs = _docs(scaled_objects())
    objects, auths = _by(docs, "ScaledObject"), _by(docs, "TriggerAuthentication")
    assert set(objects) == {n for n, s in SIZING.items() if s.replicated}
    deployments = _by(_docs(k8s_services()), "Deployment")
    for name, so in objects.items():
        spec = so["spec"]
        topics = [t["metadata"]["topic"] for t in spec["triggers"]]
        assert sorted(topics) == sorted(t.name for t in kafka_access(name).group_topics)
        assert all(".retry." not in t for t in topics)  # waiting retries are not work
        for topic in topics:
            assert spec["maxReplicaCount"] <= BY_NAME[topic].partitions
        assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert {t["metadata"]["consumerGroup"] for t in spec["triggers"]} == {name}
        assert spec["scaleTargetRef"]["name"] == name
        auth = auths[spec["triggers"][0]["authenticationRef"]["name"]]["spec"]
        refs = {r["parameter"]: r for r in auth["secretTargetRef"]}
        assert refs["password"]["name"] == kafka_user(name)
        assert refs["password"]["key"] == "password"  # Strimzi's SCRAM Secret
        (env,) = auth["env"]
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert env["containerName"] == container["name"]
        values = {e["name"]: e.get("value") for e in container["env"]}
        assert values[env["name"]] == kafka_user(name)
    # KEDA owns the replica count of the services it scales.
    for name, d in deployments.items():
        assert ("replicas" in d["spec"]) == (name not in objects)


def test_pods_are_locked_down() -> None:
    docs = _docs(k8s_services())
    budgets = _by(_docs(disruption_budgets()), "PodDisruptionBudget")
    for name, d in _by(docs, "Deployment").items():
        pod = d["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["runAsUser"] >= 10000
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["memory"]
        replicated = SIZING[name].replicated
        assert ("topologySpreadConstraints" in pod) == replicated
        assert (name in budgets) == replicated


def test_the_kafka_password_lands_where_the_settings_read_it(tmp_path: Path) -> None:
    (d,) = [x for x in _docs(k8s_services()) if x["kind"] == "Deployment"][:1]
    pod = d["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    secrets = next(v for v in pod["volumes"] if v["name"] == "secrets")
    kafka = next(
        s["secret"] for s in secrets["projected"]["sources"]
        if s["secret"]["name"] == kafka_user(c["name"])
    )  # fmt: skip
    (item,) = kafka["items"]
    env = {e["name"]: e["value"] for e in c["env"]}
    mount = next(m for m in c["volumeMounts"] if m["name"] == "secrets")
    assert env["KOPRU_SECRETS_DIR"] == mount["mountPath"]
    # The mounted file, as the kubelet writes it, read by the service's settings.
    (tmp_path / item["path"]).write_text("s3cret")
    # Every service's settings share the kafka section and the secrets source of
    # BaseServiceSettings (the MKK/BKM secrets a real start also needs are not at issue).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOPRU_SECRETS_DIR", str(tmp_path))
        mp.setenv("KOPRU_KAFKA__SASL_USERNAME", env["KOPRU_KAFKA__SASL_USERNAME"])
        settings = load_settings(BaseServiceSettings)
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "s3cret"
    assert settings.kafka.sasl_username == kafka_user(c["name"])


def test_bkm_ingress_paths_are_payment_notifier_routes_and_only_those() -> None:
    (ingress,) = _docs(bkm_ingress())
    (rule,) = ingress["spec"]["rules"]
    paths = [p["path"] for p in rule["http"]["paths"]]
    assert paths == list(BKM_PATHS)
    routes = {getattr(r, "path", None): r for r in _service("payment-notifier").routes}
    for p in paths:
        assert "POST" in (getattr(routes[p], "methods", None) or ())
    assert all(p["pathType"] == "Exact" for p in rule["http"]["paths"])
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]


def test_network_policies_deny_by_default_and_open_only_the_named_paths() -> None:
    policies = _by(_docs(network_policies()), "NetworkPolicy")
    deny = policies["kopru-default-deny"]["spec"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "kopru"}}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    ingress_rules = {n: p for n, p in policies.items() if "Ingress" in p["spec"]["policyTypes"]}
    # Only Prometheus (all pods) and the ingress controller (payment-notifier) get in.
    sources = {
        n: [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for r in p["spec"].get("ingress", []) for f in r["from"]]
        for n, p in ingress_rules.items()
    }  # fmt: skip
    assert sources == {
        "kopru-default-deny": [],
        "kopru-ingress-metrics": ["monitoring"],
        "payment-notifier-ingress-bkm": ["ingress-nginx"],
    }
    # Egress to the outside is by ipBlock only, never 0.0.0.0/0 in the base.
    for name, p in policies.items():
        for rule in p["spec"].get("egress", []):
            for to in rule["to"]:
                if "ipBlock" in to:
                    assert name.startswith("kopru-egress-")
                    assert to["ipBlock"]["cidr"] != "0.0.0.0/0"


def test_every_generated_deployment_is_in_the_base_kustomization() -> None:
    root = Path(__file__).resolve().parents[2] / "deploy"
    base = yaml.safe_load((root / "base" / "kustomization.yaml").read_text())
    generated = [
        *kafka_users(),
        *strimzi_topics(),
        *k8s_services(),
        *disruption_budgets(),
        *network_policies(),
        *bkm_ingress(),
    ]
    for rel in generated:
        assert fnmatch.fnmatch(rel, "deploy/base/*.yaml")
        assert rel.removeprefix("deploy/base/") in base["resources"]
    component = yaml.safe_load(
        (root / "components" / "autoscaling" / "kustomization.yaml").read_text()
    )
    (rel,) = scaled_objects()
    assert Path(rel).name in component["resources"]
