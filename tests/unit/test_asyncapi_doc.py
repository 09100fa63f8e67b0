"""The AsyncAPI documents list what each service publishes (from the catalogue's
producers), describe retry tiers and dead letters once, and every $ref resolves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.events import CATALOGUE
from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]


def _doc(service: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / f"contracts/asyncapi/{service}.yaml").read_text())
    return data


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/")]
    return node


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_produced_topic_has_a_send_operation(service: str) -> None:
    doc = _doc(service)
    sent: dict[str, set[str]] = {}
    for op in doc["operations"].values():
        if op["action"] == "send":
            channel = _resolve(doc, op["channel"]["$ref"])
            names = {m["$ref"].rsplit("/", 1)[-1] for m in op["messages"]}
            sent.setdefault(channel["address"], set()).update(names)
    for spec in CATALOGUE:
        if service in spec.producers:
            assert {e.__name__ for e in spec.event_types} <= sent.get(spec.name, set()), spec.name
        else:
            assert spec.name not in sent, f"{service} does not produce {spec.name}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_retry_tiers_and_dead_letters_are_described_once(service: str) -> None:
    doc = _doc(service)
    addresses = [c["address"] for c in doc["channels"].values()]
    assert not [a for a in addresses if re.search(r"\.retry\.[^.]+\.\d+m?s$", a)], addresses
    retry = [a for a in addresses if a.endswith(".{tier}")]
    assert retry and len(retry) == len(set(retry))
    assert addresses.count("{topic}.dlq") == 1
    dlq = doc["channels"]["dead-letters"]["parameters"]["topic"]["enum"]
    for address in retry:
        assert address.split(".retry.")[0] in dlq
    headers = doc["components"]["messages"]["DeadLetter"]["headers"]["properties"]
    assert "x-dlq-reason" in headers


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_reference_resolves(service: str) -> None:
    doc = _doc(service)
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
