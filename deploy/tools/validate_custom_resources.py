"""Validate custom resources against the CRDs kept in deploy/schemas, offline.

    python deploy/tools/validate_custom_resources.py RENDERED.yaml [...]

Runs in the pinned tool environment of deploy/tests (jsonschema and PyYAML come with
kubernetes-validate), not in the project's. Every document whose API group has a CRD in
deploy/schemas is checked against that CRD's ``openAPIV3Schema`` for its version, the
way an API server with strict field validation checks it: an object schema that lists
its properties and does not say ``x-kubernetes-preserve-unknown-fields`` rejects any
other field. A resource of such a group whose kind or version has no CRD is an error.
Prints one line per problem and exits 1 if there was any.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema as JSON Schema, with Kubernetes' pruning turned into rejection."""
    out = copy.deepcopy(schema)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in list(out):
        if key.startswith("x-kubernetes-"):
            out.pop(key)
    out.pop("nullable", None)
    if "properties" in out:
        out["properties"] = {k: _structural(v) for k, v in out["properties"].items()}
        if not preserve and "additionalProperties" not in out:
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = _structural(out["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [_structural(s) for s in out[key]]
    return out


def load_crds(folder: Path = SCHEMAS) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) → JSON Schema, from every CRD file in ``folder``."""
    crds: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                crds[(spec["group"], version["name"], spec["names"]["kind"])] = _structural(schema)
    return crds


def _metadata_problems(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return ["metadata.name is missing"]
    return []


def problems(
    docs: list[dict[str, Any]], crds: dict[tuple[str, str, str], dict[str, Any]]
) -> list[str]:
    """Every schema violation in ``docs`` (resources of groups without a CRD are ignored)."""
    groups = {group for group, _, _ in crds}
    found: list[str] = []
    for doc in docs:
        api_version = str(doc.get("apiVersion", ""))
        if "/" not in api_version:
            continue
        group, version = api_version.split("/", 1)
        if group not in groups:
            continue
        kind = str(doc.get("kind"))
        name = (doc.get("metadata") or {}).get("name", "?")
        where = f"{kind}/{name} ({api_version})"
        schema = crds.get((group, version, kind))
        if schema is None:
            found.append(f"{where}: no CRD for this kind and version in deploy/schemas")
            continue
        found += [f"{where}: {p}" for p in _metadata_problems(doc)]
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path) or "(root)"
            found.append(f"{where}: {path}: {error.message}")
    return found


def main(argv: list[str]) -> int:
    """Validate the YAML files named in ``argv``."""
    crds = load_crds()
    docs: list[dict[str, Any]] = []
    for name in argv:
        docs += [d for d in yaml.safe_load_all(Path(name).read_text()) if d]
    found = problems(docs, crds)
    checked = sum(
        1
        for d in docs
        if "/" in str(d.get("apiVersion", ""))
        and str(d["apiVersion"]).split("/", 1)[0] in {g for g, _, _ in crds}
    )
    for line in found:
        print(line)
    print(f"{checked} custom resources checked, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
