"""Validate custom resources against the CRDs kept in deploy/schemas, offline.

    python deploy/tools/validate_custom_resources.py RENDERED.yaml [...]

Runs in the pinned tool environment of deploy/tests (jsonschema and PyYAML come with
kubernetes-validate, the CEL interpreter with cel-python), not in the project's. Every
document whose API group has a CRD in deploy/schemas is checked against that CRD's
``openAPIV3Schema`` for its version, the way an API server with strict field validation
checks it: an object schema that lists its properties and does not say
``x-kubernetes-preserve-unknown-fields`` rejects any other field, and every
``x-kubernetes-validations`` rule (CEL, with ``self`` bound to the value it sits on) must
hold. A resource of such a group whose kind or version has no CRD is an error: that is
how a version upstream has removed (Strimzi's ``kafka.strimzi.io/v1beta2``) fails.
Prints one line per problem and exits 1 if there was any.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

Key = tuple[str, str, str]


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


def load_raw(folder: Path = SCHEMAS) -> dict[Key, dict[str, Any]]:
    """(group, version, kind) → the CRD's ``openAPIV3Schema`` as written."""
    crds: dict[Key, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                key = (spec["group"], version["name"], spec["names"]["kind"])
                crds[key] = version["schema"]["openAPIV3Schema"]
    return crds


def load_crds(folder: Path = SCHEMAS) -> dict[Key, dict[str, Any]]:
    """(group, version, kind) → JSON Schema, from every CRD file in ``folder``."""
    return {key: _structural(schema) for key, schema in load_raw(folder).items()}


def _rule_problems(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """Every ``x-kubernetes-validations`` rule under ``schema`` that ``value`` breaks.

    Rules on values that are absent are not evaluated (as in Kubernetes); transition
    rules (``oldSelf``) only apply to updates and are skipped."""
    found: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            continue
        env = celpy.Environment()
        program = env.program(env.compile(rule["rule"]))
        if not bool(program.evaluate({"self": celpy.json_to_cel(value)})):
            found.append(f"{path or '(root)'}: {rule.get('message') or rule['rule']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                found += _rule_problems(sub, item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += _rule_problems(schema["items"], item, f"{path}.{i}")
    return found


def _metadata_problems(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return ["metadata.name is missing"]
    return []


def problems(
    docs: list[dict[str, Any]],
    crds: dict[Key, dict[str, Any]],
    raw: dict[Key, dict[str, Any]] | None = None,
) -> list[str]:
    """Every schema violation in ``docs`` (resources of groups without a CRD are ignored).

    ``raw`` (the schemas as written) adds the CEL rules; without it only the structure
    is checked."""
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
            served = sorted(f"{g}/{v}" for g, v, k in crds if k == kind)
            found.append(
                f"{where}: no CRD for this kind and version in deploy/schemas"
                f" (served: {', '.join(served) or 'none'})"
            )
            continue
        found += [f"{where}: {p}" for p in _metadata_problems(doc)]
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for error in errors:
            path = ".".join(str(p) for p in error.absolute_path) or "(root)"
            found.append(f"{where}: {path}: {error.message}")
        if raw is not None and not errors:
            found += [f"{where}: {p}" for p in _rule_problems(raw[(group, version, kind)], doc, "")]
    return found


def main(argv: list[str]) -> int:
    """Validate the YAML files named in ``argv``."""
    raw = load_raw()
    crds = {key: _structural(schema) for key, schema in raw.items()}
    docs: list[dict[str, Any]] = []
    for name in argv:
        docs += [d for d in yaml.safe_load_all(Path(name).read_text()) if d]
    found = problems(docs, crds, raw)
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
