"""Backward compatibility: of the committed schemas with the code, and of the checker."""

from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from cairn_schemas.compat import check_backward_compatible, check_schema_sets, load_schemas
from cairn_schemas.export import current_schemas
from pydantic import BaseModel, Field

PUBLISHED = Path(__file__).resolve().parents[1] / "jsonschema"


def test_the_code_is_backward_compatible_with_the_committed_schemas() -> None:
    published = load_schemas(PUBLISHED)
    assert published, f"no schemas found in {PUBLISHED}"
    breaks = check_schema_sets(published, current_schemas())
    assert not breaks, "backward-incompatible changes to published events:\n" + "\n".join(breaks)


# --- the checker itself, on schemas pydantic generates the way it does for events ---


class Party(BaseModel):
    user_id: str
    email: str


class Old(BaseModel):
    amount: int = Field(ge=1)
    role: Literal["customer", "freelancer"]
    note: str | None = None
    when: datetime
    party: Party
    watchers: list[Party] = []


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _breaks(new: type[BaseModel]) -> list[str]:
    return check_backward_compatible(_schema(Old), _schema(new))


def test_identical_schemas_are_compatible() -> None:
    assert check_backward_compatible(_schema(Old), _schema(Old)) == []


def test_adding_an_optional_field_is_compatible() -> None:
    class New(Old):
        reason: str | None = None
        attempt: int = 1

    assert _breaks(New) == []


def test_adding_an_optional_field_to_a_nested_model_is_compatible() -> None:
    class NewParty(Party):
        name: str | None = None

    class New(BaseModel):
        amount: int = Field(ge=1)
        role: Literal["customer", "freelancer"]
        note: str | None = None
        when: datetime
        party: NewParty
        watchers: list[NewParty] = []

    assert _breaks(New) == []


def test_descriptions_titles_and_defaults_may_change() -> None:
    class New(BaseModel):
        amount: int = Field(ge=1, description="minor units", title="Money")
        role: Literal["customer", "freelancer"]
        note: str | None = "none"
        when: datetime
        party: Party
        watchers: list[Party] = Field(default=[], description="who else is told")

    assert _breaks(New) == []


def test_a_removed_field_is_a_break() -> None:
    class New(BaseModel):
        amount: int = Field(ge=1)
        role: Literal["customer", "freelancer"]
        when: datetime
        party: Party
        watchers: list[Party] = []

    assert _breaks(New) == ["note: field removed"]


def test_a_retyped_field_is_a_break() -> None:
    class New(Old):
        amount: str  # type: ignore[assignment]

    assert _breaks(New) == ["amount: type changed from integer to string"]


def test_removing_a_literal_value_is_a_break() -> None:
    class New(Old):
        role: Literal["customer"]

    assert _breaks(New) == ["role: values removed: ['freelancer']"]


def test_adding_a_literal_value_is_a_break_for_old_consumers() -> None:
    class New(Old):
        role: Literal["customer", "freelancer", "operator"]  # type: ignore[assignment]

    assert _breaks(New) == [
        "role: values added: ['operator'] (consumers on the old schema reject them)"
    ]


def test_widening_a_literal_to_any_string_is_a_break() -> None:
    class New(Old):
        role: str  # type: ignore[assignment]

    assert _breaks(New) == ["role: changed between a free value and a fixed set of values"]


def test_a_format_change_is_a_break() -> None:
    class New(Old):
        when: date  # type: ignore[assignment]

    assert _breaks(New) == ["when: format changed from 'date-time' to 'date'"]


def test_a_changed_bound_is_a_break() -> None:
    class New(Old):
        amount: int = Field(ge=0)

    assert _breaks(New) == ["amount: minimum changed from 1 to 0"]


def test_an_optional_field_made_required_is_a_break() -> None:
    class New(Old):
        note: str

    assert _breaks(New) == [
        "note: optional field made required",
        "note: no longer accepts null",
    ]


def test_a_required_field_made_optional_is_a_break() -> None:
    class New(Old):
        amount: int | None = Field(default=None, ge=1)  # type: ignore[assignment]

    assert _breaks(New) == [
        "amount: required field made optional (consumers on the old schema need it)",
        "amount: now also accepts null, which consumers on the old schema reject",
    ]


def test_a_new_required_field_is_a_break() -> None:
    class New(Old):
        attempt: int

    assert _breaks(New) == ["attempt: new required field"]


def test_breaks_inside_defs_are_found_through_refs_and_arrays() -> None:
    class NewParty(BaseModel):
        user_id: int
        email: str
        name: str

    class New(BaseModel):
        amount: int = Field(ge=1)
        role: Literal["customer", "freelancer"]
        note: str | None = None
        when: datetime
        party: NewParty
        watchers: list[NewParty] = []

    assert _breaks(New) == [
        "party.user_id: type changed from string to integer",
        "party.name: new required field",
        "watchers[].user_id: type changed from string to integer",
        "watchers[].name: new required field",
    ]


def test_a_recursive_model_is_checked_without_looping() -> None:
    class Node(BaseModel):
        label: str
        children: list["Node"] = []

    class NewNode(BaseModel):
        label: int
        children: list["NewNode"] = []

    assert check_backward_compatible(_schema(Node), _schema(NewNode)) == [
        "label: type changed from string to integer",
        "children[].label: type changed from string to integer",
    ]


def test_moving_an_event_to_another_topic_is_a_break() -> None:
    old = {**_schema(Old), "x-cairn-topic": "cairn.contracts.v1"}
    new = {**_schema(Old), "x-cairn-topic": "cairn.payments.v1"}
    assert check_backward_compatible(old, new) == [
        "x-cairn-topic changed from 'cairn.contracts.v1' to 'cairn.payments.v1'"
    ]


def test_removing_an_event_type_is_a_break_and_adding_one_is_not() -> None:
    old = {"cairn.a.done": _schema(Old), "cairn.b.done": _schema(Old)}
    new = {"cairn.a.done": _schema(Old), "cairn.c.done": _schema(Party)}
    assert check_schema_sets(old, new) == ["cairn.b.done: event type removed"]
