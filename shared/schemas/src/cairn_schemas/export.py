"""Export the event catalogue as JSON Schemas, one file per event type, plus an index.

    python -m cairn_schemas.export shared/schemas/jsonschema          # write
    python -m cairn_schemas.export --check shared/schemas/jsonschema  # exit 1 if stale

Output is stable (sorted keys, two-space indent, trailing newline), so the committed
files only change when the contract does. Writing refuses a backward-incompatible change
to a schema already in the directory (see ``cairn_schemas.compat``) unless
``--allow-breaking`` is given.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn_schemas import topics
from cairn_schemas.base import Event
from cairn_schemas.compat import check_schema_sets, load_schemas
from cairn_schemas.registry import EVENT_TYPES

__all__ = ["current_schemas", "event_schema", "expected_files", "main", "schema_id"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
INDEX = "index.json"


def schema_id(event_type: str) -> str:
    """The ``$id`` of an event type's schema (stable across schema versions)."""
    return f"urn:cairn:schema:{event_type}"


def schema_version(cls: type[Event]) -> int:
    """The ``schema_version`` a class writes by default."""
    default = cls.model_fields["schema_version"].default
    return int(default)


def event_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of one event class's body, with its CloudEvents metadata."""
    schema = cls.model_json_schema(mode="validation")
    schema.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_id(cls.event_type),
            "description": inspect.cleandoc(cls.__doc__ or ""),
            "x-cairn-event-type": cls.event_type,
            "x-cairn-topic": cls.topic,
            "x-cairn-key": cls.key_description,
            "x-cairn-schema-version": schema_version(cls),
        }
    )
    return schema


def current_schemas() -> dict[str, dict[str, Any]]:
    """Every event type's schema as generated from the code now."""
    return {event_type: event_schema(cls) for event_type, cls in sorted(EVENT_TYPES.items())}


def _render(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content of everything the export directory should hold."""
    files = {
        f"{event_type}.json": _render(schema) for event_type, schema in current_schemas().items()
    }
    index = {
        "events": [
            {
                "class": cls.__name__,
                "event_type": event_type,
                "file": f"{event_type}.json",
                "key": cls.key_description,
                "schema_version": schema_version(cls),
                "topic": cls.topic,
            }
            for event_type, cls in sorted(EVENT_TYPES.items())
        ],
        "topics": [{"name": topic, "compacted": topic in topics.COMPACTED} for topic in topics.ALL],
    }
    files[INDEX] = _render(index)
    return files


def differences(directory: Path) -> list[str]:
    """How the files in ``directory`` differ from the code; [] = up to date."""
    expected = expected_files()
    present = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    problems = [f"{name}: missing" for name in sorted(set(expected) - present)]
    problems += [f"{name}: not in the code any more" for name in sorted(present - set(expected))]
    problems += [
        f"{name}: differs from the code"
        for name in sorted(set(expected) & present)
        if (directory / name).read_text(encoding="utf-8") != expected[name]
    ]
    return problems


def write(directory: Path) -> list[str]:
    """Bring ``directory`` up to date with the code; return the names of changed files."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    changed = []
    for stale in sorted(p for p in directory.glob("*.json") if p.name not in expected):
        stale.unlink()
        changed.append(stale.name)
    for name, content in expected.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed.append(name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cairn_schemas.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files differ from the code",
    )
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="write even if a published schema changes incompatibly",
    )
    args = parser.parse_args(argv)
    directory: Path = args.directory
    if args.check:
        problems = differences(directory)
        for problem in problems:
            print(problem)
        if problems:
            print(
                f"{directory} is out of date: run python -m cairn_schemas.export {directory}",
                file=sys.stderr,
            )
            return 1
        print(f"{directory} matches the code ({len(EVENT_TYPES)} event types)")
        return 0
    if directory.is_dir() and not args.allow_breaking:
        breaks = check_schema_sets(load_schemas(directory), current_schemas())
        if breaks:
            for problem in breaks:
                print(problem)
            print(
                "refusing to overwrite published schemas with incompatible ones; add an "
                "optional field or a new event type instead (--allow-breaking to force)",
                file=sys.stderr,
            )
            return 1
    changed = write(directory)
    print(
        f"wrote {len(changed)} file(s) to {directory}"
        if changed
        else f"{directory} already up to date"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
