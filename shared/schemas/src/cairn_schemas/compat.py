"""Backward-compatibility check between two versions of an event's JSON Schema.

The rule (DESIGN §6): an existing event type may only gain *optional* fields. Anything
else breaks someone: a consumer on the old schema rejects what a new producer sends, or a
consumer on the new schema rejects events already on the topic (Kafka keeps them). So for
every field, recursively through ``$defs`` and nested objects, this reports:

- a field removed, or a required field made optional;
- a new required field, or an optional field made required;
- a field retyped: another JSON type, nullability gained or lost, enum/literal values
  removed or added, a changed ``format``, ``pattern`` or bound (length, minimum...).

Descriptions, titles and defaults may change freely. Usage, e.g. in CI against the
schemas of the main branch::

    python -m cairn_schemas.compat OLD_DIR [NEW_DIR]   # NEW_DIR defaults to the code
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["check_backward_compatible", "check_schema_sets", "load_schemas", "main"]

Schema = Mapping[str, Any]

_CONSTRAINTS = (
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
_METADATA = ("$id", "x-cairn-event-type", "x-cairn-topic", "x-cairn-key")


def check_backward_compatible(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every way ``new_schema`` breaks compatibility with ``old_schema``; [] = compatible."""
    breaks = [
        f"{name} changed from {old_schema[name]!r} to {new_schema.get(name)!r}"
        for name in _METADATA
        if name in old_schema and old_schema[name] != new_schema.get(name)
    ]
    _Comparison(old_schema, new_schema, breaks).compare(old_schema, new_schema, "")
    return breaks


def check_schema_sets(old: Mapping[str, Schema], new: Mapping[str, Schema]) -> list[str]:
    """Compare two catalogues (event type -> schema): removed types and every break."""
    breaks = [f"{event_type}: event type removed" for event_type in sorted(set(old) - set(new))]
    for event_type in sorted(set(old) & set(new)):
        breaks += [
            f"{event_type}: {problem}"
            for problem in check_backward_compatible(old[event_type], new[event_type])
        ]
    return breaks


def load_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    """The event schemas exported in ``directory``, by event type (``index.json`` aside)."""
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == "index.json":
            continue
        schema = json.loads(path.read_text(encoding="utf-8"))
        schemas[str(schema.get("x-cairn-event-type", path.stem))] = schema
    return schemas


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema, breaks: list[str]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.breaks = breaks
        self._active: set[tuple[int, int]] = set()

    def report(self, path: str, problem: str) -> None:
        self.breaks.append(f"{path or '(root)'}: {problem}")

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        old_variants = _variants(old, self.old_root)
        new_variants = _variants(new, self.new_root)
        if len(old_variants) == 1 and len(new_variants) == 1:
            self._compare_one(old_variants[0], new_variants[0], path)
            return
        old_keyed, new_keyed = _keyed(old_variants), _keyed(new_variants)
        for key in sorted(set(old_keyed) - set(new_keyed)):
            self.report(path, f"no longer accepts {key}")
        for key in sorted(set(new_keyed) - set(old_keyed)):
            self.report(path, f"now also accepts {key}, which consumers on the old schema reject")
        for key in sorted(set(old_keyed) & set(new_keyed)):
            self._compare_one(old_keyed[key], new_keyed[key], path)

    def _compare_one(self, old: Schema, new: Schema, path: str) -> None:
        pair = (id(old), id(new))
        if pair in self._active:  # a recursive model: this pair is already being compared
            return
        self._active.add(pair)
        try:
            self._compare_nodes(old, new, path)
        finally:
            self._active.discard(pair)

    def _compare_nodes(self, old: Schema, new: Schema, path: str) -> None:
        old_kind, new_kind = _kind(old), _kind(new)
        if old_kind != new_kind:
            self.report(path, f"type changed from {old_kind} to {new_kind}")
            return
        old_values, new_values = _enum(old), _enum(new)
        if old_values is not None or new_values is not None:
            if old_values is None or new_values is None:
                self.report(path, "changed between a free value and a fixed set of values")
            else:
                removed = [v for v in old_values if v not in new_values]
                added = [v for v in new_values if v not in old_values]
                if removed:
                    self.report(path, f"values removed: {removed}")
                if added:
                    self.report(
                        path, f"values added: {added} (consumers on the old schema reject them)"
                    )
        for constraint in _CONSTRAINTS:
            if old.get(constraint) != new.get(constraint):
                self.report(
                    path,
                    f"{constraint} changed from {old.get(constraint)!r} to {new.get(constraint)!r}",
                )
        if old_kind == "object":
            self._compare_objects(old, new, path)
        elif old_kind == "array":
            self._compare_items(old, new, path)

    def _compare_objects(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Mapping[str, Schema] = old.get("properties", {})
        new_props: Mapping[str, Schema] = new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name, old_prop in old_props.items():
            field = f"{path}.{name}" if path else name
            if name not in new_props:
                self.report(field, "field removed")
                continue
            if name in new_required and name not in old_required:
                self.report(field, "optional field made required")
            elif name in old_required and name not in new_required:
                self.report(
                    field, "required field made optional (consumers on the old schema need it)"
                )
            self.compare(old_prop, new_props[name], field)
        for name in new_props:
            if name not in old_props and name in new_required:
                self.report(f"{path}.{name}" if path else name, "new required field")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            self.compare(old_extra, new_extra, f"{path}[*]")
        elif old_extra != new_extra:
            self.report(path, f"additionalProperties changed from {old_extra!r} to {new_extra!r}")

    def _compare_items(self, old: Schema, new: Schema, path: str) -> None:
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self.compare(old_items, new_items, f"{path}[]")
        elif old_items != new_items:
            self.report(path, "array items changed")


def _resolve(node: Schema, root: Schema) -> Schema:
    """Follow local ``$ref``s (``#/$defs/X``) and single-element ``allOf`` wrappers."""
    for _ in range(64):
        if "$ref" in node:
            ref = str(node["$ref"])
            if not ref.startswith("#/"):
                raise ValueError(f"only local $refs are supported, got {ref!r}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
        elif "allOf" in node and len(node["allOf"]) == 1:
            siblings = {k: v for k, v in node.items() if k != "allOf"}
            node = {**node["allOf"][0], **siblings}
        else:
            return node
    raise ValueError("$ref chain too deep")


def _variants(node: Schema, root: Schema) -> list[Schema]:
    """The alternatives a node accepts: its ``anyOf``/``oneOf`` members or type list."""
    node = _resolve(node, root)
    for union in ("anyOf", "oneOf"):
        if union in node:
            return [v for member in node[union] for v in _variants(member, root)]
    types = node.get("type")
    if isinstance(types, Sequence) and not isinstance(types, str):
        return [{**node, "type": t} for t in types]
    return [node]


def _kind(node: Schema) -> str:
    if "type" in node:
        return str(node["type"])
    values = _enum(node)
    if values is not None:
        return "/".join(sorted({type(v).__name__ for v in values}))
    if "properties" in node:
        return "object"
    return "any"


def _enum(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _keyed(variants: list[Schema]) -> dict[str, Schema]:
    """Name union members by kind, so old and new members can be paired up."""
    kinds = [_kind(variant) for variant in variants]
    keyed: dict[str, Schema] = {}
    for index, (kind, variant) in enumerate(zip(kinds, variants, strict=True)):
        key = kind if kinds.count(kind) == 1 else f"{kind} {variant.get('title', index)}"
        keyed[key] = variant
    return keyed


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: compare the schemas in OLD_DIR with NEW_DIR (default: generated from the code)."""
    parser = argparse.ArgumentParser(
        prog="python -m cairn_schemas.compat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old_dir", type=Path, help="the published schemas (e.g. main's)")
    parser.add_argument("new_dir", type=Path, nargs="?", help="default: generated from the code")
    args = parser.parse_args(argv)
    old = load_schemas(args.old_dir)
    if args.new_dir is not None:
        new: Mapping[str, Schema] = load_schemas(args.new_dir)
    else:
        from cairn_schemas.export import current_schemas

        new = current_schemas()
    breaks = check_schema_sets(old, new)
    for problem in breaks:
        print(problem)
    if breaks:
        print(f"{len(breaks)} backward-incompatible change(s)", file=sys.stderr)
        return 1
    print(f"compatible: {len(new)} event types checked against {len(old)} published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
