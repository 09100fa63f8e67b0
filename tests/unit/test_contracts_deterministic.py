"""The generated contracts depend on the code only, so `make contracts-check` cannot
fail by chance: FastStream's AsyncAPI lists subscribers and channels in an order that
can change from process to process (seen: payment-notifier's two subscribers swapped)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from services.common.contracts import canonical_asyncapi

ROOT = Path(__file__).resolve().parents[2]


def _spec(channel_names: list[str]) -> str:
    channels = {n: {"address": n.split(":")[0]} for n in channel_names}
    operations = {f"{n}Subscribe": {"action": "receive"} for n in channel_names}
    messages = {f"{n}:Message": {"payload": {}} for n in channel_names}
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "svc"},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"B": {}, "A": {}}},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def test_channel_operation_and_component_order_does_not_matter() -> None:
    one = canonical_asyncapi(_spec(["moka.requested:OnMoka", "bkm.requested:OnBkm"]))
    other = canonical_asyncapi(_spec(["bkm.requested:OnBkm", "moka.requested:OnMoka"]))
    assert one == other
    doc = yaml.safe_load(one)
    assert list(doc) == ["asyncapi", "info", "channels", "operations", "components"]
    assert list(doc["channels"]) == ["bkm.requested:OnBkm", "moka.requested:OnMoka"]
    assert list(doc["components"]["schemas"]) == ["A", "B"]


PRINT_DIGEST = """
import hashlib, json
import services.cli
from services.common.contracts import generate
print(hashlib.sha256(json.dumps(generate(), sort_keys=True).encode()).hexdigest())
"""


def test_separate_processes_generate_the_same_files() -> None:
    digests = {
        subprocess.run(
            [sys.executable, "-c", PRINT_DIGEST], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
        for _ in range(4)
    }  # fmt: skip
    assert len(digests) == 1
