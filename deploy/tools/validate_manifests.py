"""Schema-validate rendered manifests offline: Kubernetes kinds with kubernetes-validate
(strict: unknown fields fail), custom resources with the CRD schemas vendored in
deploy/schemas/. Any kind with neither fails, unless listed below with the reason.

    python deploy/tools/validate_manifests.py --kubernetes 1.33 rendered.yaml...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
# Kinds with no schema to check against, and why that is acceptable.
NO_SCHEMA: dict[tuple[str, str], str] = {
    ("keda.sh/v1alpha1", "TriggerAuthentication"): (
        "no schema in shared/k8s-schemas; its fields are asserted by "
        "tests/unit/test_k8s_manifests.py"
    ),
}


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    if "/" not in api_version:
        return None
    group, version = api_version.split("/", 1)
    path = SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.exists():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def validate(doc: dict[str, Any], kube: str) -> str:
    """How the object was validated; raises on an invalid object or a kind with no schema."""
    api, kind = doc["apiVersion"], doc["kind"]
    schema = crd_schema(api, kind)
    if schema is not None:
        jsonschema.validators.validator_for(schema)(schema).validate(doc)
        return f"CRD schema {api.split('/')[0]}/{kind.lower()}_{api.split('/')[1]}"
    try:
        kubernetes_validate.validate(doc, kube, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        if (api, kind) in NO_SCHEMA:
            return f"not schema-validated: {NO_SCHEMA[(api, kind)]}"
        raise
    return f"kubernetes-validate {kube} strict"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubernetes", default="1.33")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    failed = 0
    for path in args.files:
        how: Counter[tuple[str, str]] = Counter()
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                how[(doc["kind"], validate(doc, args.kubernetes))] += 1
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
                failed += 1
                where = "/".join(str(p) for p in exc.absolute_path)
                print(f"FAIL {path}: {name}: {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError:
                failed += 1
                print(f"FAIL {path}: {name}: no schema for {doc['apiVersion']} {doc['kind']}")
        total = sum(how.values())
        print(f"{path}: {total} objects valid")
        for (kind, method), n in sorted(how.items()):
            print(f"  {n:3d} {kind:<22} {method}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
