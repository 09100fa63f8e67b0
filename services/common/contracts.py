"""Contracts generated from the code, checked in, and checked for drift in CI.

- contracts/asyncapi/<service>.yaml: FastStream's AsyncAPI 3.0 of each service, completed
  from the catalogue (what it publishes; retry tiers and dead letters described once);
- contracts/jsonschema/<Event>.json: JSON Schema of every Kafka event;
- contracts/topics.yaml: the topic catalogue (topics, keys, partitions, retention,
  event types, dead-letter and retry topics);
- contracts/openapi/mkk.yaml: OpenAPI 3.1 of the MKK calls kopru makes (bodies are
  JWS compact serialisations of the JSON shown, §3, §9.2);
- deploy/monitoring/dashboards/*.json and docs/dashboards.md: the Grafana dashboards and
  their panel list (services/common/monitoring/dashboards.py);
- deploy/monitoring/prometheus-rules.yaml: the PrometheusRule around the alert rules in
  deploy/monitoring/rules/kopru.rules.yaml (services/common/monitoring/rules.py);
- deploy/base/*.yaml, deploy/components/: Kubernetes objects (services.common.k8s);
- docs/settings.md: every service's variables and secret-file names (settings_reference.py).
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from schemas.events import CATALOGUE, EVENT_TYPES
from services.common.asyncapi_doc import complete
from services.common.k8s import K8S_GENERATORS
from services.common.kafka.topic_admin import plan
from services.common.settings import KafkaSettings
from services.common.settings_reference import settings_docs

Generated = dict[str, str]


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def asyncapi() -> Generated:
    from services.registry import SERVICES

    out: Generated = {}
    for name, e in SERVICES.items():
        module = importlib.import_module(e.module)
        # Defaults without validation: no secrets or key files are needed to describe it.
        settings = module.Settings.model_construct()
        service = module.build(settings)
        spec = service.specification().to_specification()
        doc = complete(yaml.safe_load(spec.to_yaml()), name, settings.kafka.retry_tiers_s)
        out[f"contracts/asyncapi/{name}.yaml"] = canonical_asyncapi(_dump_yaml(doc))
    return out


def canonical_asyncapi(text: str) -> str:
    """FastStream lists a multi-topic subscriber's channels in set order, which varies
    from run to run (hash seed): sort the named maps so the file depends on the code only."""
    doc = yaml.safe_load(text)
    for key in ("channels", "operations"):
        if isinstance(doc.get(key), dict):
            doc[key] = dict(sorted(doc[key].items()))
    components = doc.get("components") or {}
    for key, value in list(components.items()):
        if isinstance(value, dict):
            components[key] = dict(sorted(value.items()))
    return _dump_yaml(doc)


def json_schemas() -> Generated:
    out: Generated = {}
    for event in EVENT_TYPES:
        schema = event.model_json_schema(mode="serialization")
        out[f"contracts/jsonschema/{event.__name__}.json"] = (
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
    return out


def topics() -> Generated:
    kafka = KafkaSettings()
    rows = []
    for spec in CATALOGUE:
        rows.append(
            {
                "name": spec.name,
                "events": [e.__name__ for e in spec.event_types],
                "key": spec.key,
                "partitions": spec.partitions,
                "cleanup_policy": spec.cleanup_policy,
                "retention_ms": spec.retention_ms,
                "producers": list(spec.producers),
                "consumers": list(spec.consumers),
                "dead_letter_topic": spec.dlq,
                "description": spec.description,
            }
        )
    all_topics = [t.name for t in plan(kafka)]
    body = {"topics": rows, "retry_tiers_s": kafka.retry_tiers_s, "all_topics": all_topics}
    return {"contracts/topics.yaml": _dump_yaml(body)}


def mkk_openapi() -> Generated:
    from schemas import mkk

    calls: list[tuple[str, str, type[Any], type[Any] | None, str]] = [
        (mkk.AUTH_PATH, "token (§3.2), plain JSON", mkk.AuthRequest, mkk.AuthAnswer, "json"),
        (
            mkk.BALANCE_REPORT_PATH,
            "balance report request (§5.1), JWS body",
            mkk.BalanceReportRequest,
            mkk.BalanceReportAnswer,
            "jws",
        ),
        (
            mkk.REPORT_STATUS_PATH,
            "asynchronous report status (§6.1), JWS body",
            mkk.ReportStatusRequest,
            mkk.ReportStatusAnswer,
            "jws",
        ),
        (
            mkk.REPORT_CONTENT_PATH,
            "asynchronous report content (§6.2), JWS body; zip on success",
            mkk.ReportContentRequest,
            None,
            "jws",
        ),
    ]
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}

    def ref(model: type[Any]) -> dict[str, str]:
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for path, summary, req, ans, kind in calls:
        media = "application/json" if kind == "json" else "text/plain"
        request_schema: dict[str, Any] = ref(req)
        if kind == "jws":
            request_schema = {
                "type": "string",
                "description": "JWS compact serialisation (RS256) of the JSON request",
                "x-jws-payload": request_schema,
            }
        ok: dict[str, Any] = (
            {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
            if ans is None
            else {"text/plain" if kind == "jws" else "application/json": {"schema": ref(ans)}}
        )
        paths[path] = {
            "post": {
                "summary": summary,
                "parameters": [
                    {
                        "name": "Sender",
                        "in": "header",
                        "required": kind == "jws",
                        "schema": {"type": "string", "pattern": mkk.SENDER_RE},
                    },
                ],
                "requestBody": {"required": True, "content": {media: {"schema": request_schema}}},
                "responses": {
                    "200": {"description": "accepted", "content": ok},
                    "422": {"description": "business error (responseCode, responseDesc)"},
                    "500": {"description": "gateway error (OI codes, FAQ 5)"},
                },
            }
        }
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "MKK MKS Online REST API: the calls kopru uses", "version": "1.0"},
        "servers": [
            {"url": "https://apitest.mkk.com.tr", "description": "test, exchange line"},
            {"url": "https://apitestint.mkk.com.tr", "description": "test, internet line"},
            {"url": "https://api.mkk.com.tr", "description": "prod, exchange line"},
            {"url": "https://apiint.mkk.com.tr", "description": "prod, internet line"},
        ],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(components.items())),
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
    return {"contracts/openapi/mkk.yaml": _dump_yaml(doc)}


def _dashboards() -> Generated:
    from services.common.monitoring.dashboards import dashboards

    return dashboards()


def _prometheus_rule() -> Generated:
    from services.common.monitoring.rules import prometheus_rule

    return prometheus_rule()


GENERATORS: tuple[Callable[[], Generated], ...] = (
    _dashboards,
    _prometheus_rule,
    json_schemas,
    topics,
    mkk_openapi,
    *K8S_GENERATORS,
    asyncapi,
    settings_docs,
)


def generate() -> Generated:
    out: Generated = {}
    for gen in GENERATORS:
        out.update(gen())
    return out


def write(root: Path) -> list[str]:
    changed = []
    for rel, text in generate().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(rel)
    return changed


def check(root: Path) -> list[str]:
    """Differences between the checked-in contracts and the code (empty: no drift)."""
    problems = []
    expected = generate()
    for rel, text in expected.items():
        path = root / rel
        if not path.exists():
            problems.append(f"missing: {rel}")
            continue
        current = path.read_text()
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), rel, rel + " (from code)", lineterm=""
            )
            problems.append("\n".join(list(diff)[:40]))
    for folder in ("contracts/asyncapi", "contracts/jsonschema", "deploy/monitoring/dashboards"):
        for path in sorted((root / folder).glob("*")):
            rel = str(path.relative_to(root))
            if rel not in expected:
                problems.append(f"stale (no longer generated): {rel}")
    return problems
