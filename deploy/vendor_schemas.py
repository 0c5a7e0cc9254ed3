"""Vendor the JSON Schemas that rendered manifests are validated against (deploy/k8s/schemas).

    python -m deploy.vendor_schemas --kubernetes DIR --keda FILE

--kubernetes: a `v<version>-local-strict` folder of the kubernetes-validate package (PyPI),
whose `_definitions.json` holds every Kubernetes type; --keda: KEDA's ScaledObject CRD
(config/crd/bases/keda.sh_scaledobjects.yaml of the Go module github.com/kedacore/keda/v2).
Each kind becomes one self-contained file: only the definitions it reaches, descriptions
dropped (they are most of the size and checked nothing), and, for the CRD, objects closed to
unknown fields the way the API server prunes them, so a misspelt field fails the test.
"""

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SCHEMAS = Path(__file__).resolve().parent / "k8s" / "schemas"

# The Kubernetes kinds the manifests use: (schema file of the package, apiVersion, kind).
KUBERNETES_KINDS = (
    ("configmap-v1.json", "v1", "ConfigMap"),
    ("secret-v1.json", "v1", "Secret"),
    ("service-v1.json", "v1", "Service"),
    ("serviceaccount-v1.json", "v1", "ServiceAccount"),
    ("deployment-apps-v1.json", "apps/v1", "Deployment"),
    ("job-batch-v1.json", "batch/v1", "Job"),
    ("horizontalpodautoscaler-autoscaling-v2.json", "autoscaling/v2", "HorizontalPodAutoscaler"),
    ("poddisruptionbudget-policy-v1.json", "policy/v1", "PodDisruptionBudget"),
    ("ingress-networking-v1.json", "networking.k8s.io/v1", "Ingress"),
    ("networkpolicy-networking-v1.json", "networking.k8s.io/v1", "NetworkPolicy"),
)
_DEFINITION_REF = re.compile(r"^(?:.*_definitions\.json)?#/\$defs/(.+)$")


def schema_file(api_version: str, kind: str) -> str:
    return f"{api_version.replace('/', '-').replace('.', '-')}-{kind.lower()}.json"


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_descriptions(value)
            for key, value in node.items()
            if key != "description" or not isinstance(value, str)
        }
    if isinstance(node, list):
        return [_without_descriptions(item) for item in node]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _local_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                _DEFINITION_REF.sub(r"#/$defs/\1", value)
                if key == "$ref" and isinstance(value, str)
                else _local_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_local_refs(item) for item in node]
    return node


def kubernetes_schema(folder: Path, file: str) -> dict[str, Any]:
    definitions = json.loads((folder / "_definitions.json").read_text("utf-8"))["$defs"]
    root = json.loads((folder / file).read_text("utf-8"))
    needed: dict[str, Any] = {}
    pending = list(_refs(root))
    while pending:
        match = _DEFINITION_REF.match(pending.pop())
        if not match or match.group(1) in needed:
            continue
        name = match.group(1)
        needed[name] = definitions[name]
        pending.extend(_refs(definitions[name]))
    root.pop("$id", None)
    schema = {**root, "$defs": dict(sorted(needed.items()))}
    return _without_descriptions(_local_refs(schema))  # type: ignore[no-any-return]


def _closed(node: Any) -> Any:
    """Objects with declared properties reject unknown ones, unless the CRD keeps them."""
    if isinstance(node, dict):
        closed = {key: _closed(value) for key, value in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


def crd_schema(crd_file: Path, version: str) -> tuple[str, str, dict[str, Any]]:
    crd = yaml.safe_load(crd_file.read_text("utf-8"))
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _closed(_without_descriptions(served["schema"]["openAPIV3Schema"]))
    api_version = f"{group}/{version}"
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    # Metadata is checked against Kubernetes' ObjectMeta, as for every kind.
    schema["properties"]["metadata"] = {"type": "object"}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
    return api_version, kind, {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _write(name: str, schema: dict[str, Any]) -> None:
    text = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    (SCHEMAS / name).write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMAS / name}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.vendor_schemas", description=__doc__)
    parser.add_argument("--kubernetes", type=Path, required=True)
    parser.add_argument("--keda", type=Path, required=True)
    args = parser.parse_args()
    SCHEMAS.mkdir(parents=True, exist_ok=True)
    for file, api_version, kind in KUBERNETES_KINDS:
        _write(schema_file(api_version, kind), kubernetes_schema(args.kubernetes, file))
    api_version, kind, schema = crd_schema(args.keda, "v1alpha1")
    _write(schema_file(api_version, kind), schema)


if __name__ == "__main__":
    main()
