"""The JSON Schema export: committed files up to date, stable, and guarded."""

import json
from pathlib import Path

import pytest
from cairn_schemas import compat, export
from cairn_schemas.registry import EVENT_TYPES

PUBLISHED = Path(__file__).resolve().parents[1] / "jsonschema"


def test_committed_schemas_match_the_code() -> None:
    problems = export.differences(PUBLISHED)
    assert not problems, (
        "shared/schemas/jsonschema is stale, run "
        "`uv run python -m cairn_schemas.export shared/schemas/jsonschema`:\n" + "\n".join(problems)
    )


def test_one_file_per_event_type_with_its_metadata(tmp_path: Path) -> None:
    assert export.main([str(tmp_path)]) == 0
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {f"{t}.json" for t in EVENT_TYPES} | {"index.json"}
    schema = json.loads((tmp_path / "cairn.milestone.approved.json").read_text())
    assert schema["$id"] == "urn:cairn:schema:cairn.milestone.approved"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["x-cairn-event-type"] == "cairn.milestone.approved"
    assert schema["x-cairn-topic"] == "cairn.contracts.v1"
    assert schema["x-cairn-key"] == "contract_id"
    assert schema["x-cairn-schema-version"] == 1
    assert "approved_version" in schema["required"]


def test_index_lists_every_event_and_topic(tmp_path: Path) -> None:
    export.main([str(tmp_path)])
    index = json.loads((tmp_path / "index.json").read_text())
    assert [e["event_type"] for e in index["events"]] == sorted(EVENT_TYPES)
    settings = next(
        e for e in index["events"] if e["event_type"] == "cairn.marketplace.settings_changed"
    )
    assert settings == {
        "class": "MarketplaceSettingsChanged",
        "event_type": "cairn.marketplace.settings_changed",
        "file": "cairn.marketplace.settings_changed.json",
        "key": "marketplace_id",
        "schema_version": 1,
        "topic": "cairn.marketplaces.v1",
    }
    assert {"name": "cairn.marketplaces.v1", "compacted": True} in index["topics"]


def test_output_is_stable_and_pretty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export.main([str(tmp_path)])
    first = {p.name: p.read_text() for p in tmp_path.iterdir()}
    capsys.readouterr()
    assert export.main([str(tmp_path)]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == first
    text = first["cairn.payment.funded.json"]
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_fails_on_a_stale_missing_or_extra_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export.main([str(tmp_path)])
    assert export.main(["--check", str(tmp_path)]) == 0

    (tmp_path / "cairn.payment.funded.json").write_text("{}\n")
    (tmp_path / "cairn.payment.failed.json").unlink()
    (tmp_path / "cairn.payment.teleported.json").write_text("{}\n")
    capsys.readouterr()
    assert export.main(["--check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "cairn.payment.funded.json: differs from the code" in out
    assert "cairn.payment.failed.json: missing" in out
    assert "cairn.payment.teleported.json: not in the code any more" in out


def test_check_of_a_directory_that_does_not_exist_fails(tmp_path: Path) -> None:
    assert export.main(["--check", str(tmp_path / "nowhere")]) == 1


def test_writing_refuses_to_publish_a_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export.main([str(tmp_path)])
    path = tmp_path / "cairn.milestone.approved.json"
    published = json.loads(path.read_text())
    # As if the code had dropped a field that was published before.
    published["properties"]["reviewer_note"] = {"type": "string"}
    path.write_text(json.dumps(published))
    capsys.readouterr()

    assert export.main([str(tmp_path)]) == 1
    assert "cairn.milestone.approved: reviewer_note: field removed" in capsys.readouterr().out
    assert "reviewer_note" in path.read_text()

    assert export.main(["--allow-breaking", str(tmp_path)]) == 0
    assert "reviewer_note" not in path.read_text()


def test_compat_cli_compares_a_published_directory_with_the_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export.main([str(tmp_path)])
    assert compat.main([str(tmp_path)]) == 0
    (tmp_path / "cairn.message.posted.json").write_text(
        json.dumps(
            {
                "x-cairn-event-type": "cairn.message.posted",
                "type": "object",
                "properties": {"body": {"type": "integer"}},
                "required": ["body"],
            }
        )
    )
    capsys.readouterr()
    assert compat.main([str(tmp_path)]) == 1
    assert (
        "cairn.message.posted: body: type changed from integer to string" in capsys.readouterr().out
    )
    assert compat.main([str(tmp_path), str(tmp_path)]) == 0
