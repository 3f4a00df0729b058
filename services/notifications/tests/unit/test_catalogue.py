"""The catalogue's rules: who hears about what (the full matrix runs end to end in
integration/test_catalogue.py), and that every email has both of its templates."""

from __future__ import annotations

from pathlib import Path

import cairn_notifications
import pytest
from cairn_notifications.domain.catalogue import all_kinds, notices_for
from cairn_schemas.samples import AS_CUSTOMER, AS_FREELANCER, AS_OPERATOR, AS_SYSTEM, SAMPLES

TEMPLATES = Path(cairn_notifications.__file__).parent / "templates"


def audiences(event_type: str, **changes: object) -> list[str]:
    event = SAMPLES[event_type].model_copy(update=changes)
    return sorted(kind.audience for kind in notices_for(event))


def test_a_milestone_is_announced_to_the_customer_only_when_the_freelancer_creates_it() -> None:
    assert audiences("cairn.milestone.created", created_by="freelancer") == ["customer"]
    assert audiences("cairn.milestone.created", created_by="customer") == []


def test_edits_and_deletions_go_to_the_other_party() -> None:
    for event_type in ("cairn.milestone.edited", "cairn.milestone.deleted"):
        # (a task the freelancer is reviewing; drafts: see the tests below)
        assert audiences(event_type, actor=AS_CUSTOMER, state="pending_approval") == ["freelancer"]
        assert audiences(event_type, actor=AS_FREELANCER) == ["customer"]
        assert audiences(event_type, actor=AS_SYSTEM) == ["customer", "freelancer"]


def test_a_message_goes_to_the_other_party_or_both_when_an_operator_writes() -> None:
    assert audiences("cairn.message.posted", author=AS_CUSTOMER) == ["freelancer"]
    assert audiences("cairn.message.posted", author=AS_FREELANCER) == ["customer"]
    assert audiences("cairn.message.posted", author=AS_OPERATOR) == ["customer", "freelancer"]


def test_disputes_reach_the_freelancer_and_the_operators() -> None:
    assert audiences("cairn.dispute.opened") == ["freelancer", "operators"]
    assert audiences("cairn.dispute.resolved") == ["customer", "freelancer"]


def test_money_orders_between_services_send_no_email() -> None:
    for event_type in (
        "cairn.milestone.funding_requested",
        "cairn.milestone.release_requested",
        "cairn.milestone.refund_ordered",
        "cairn.milestone.split_ordered",
        "cairn.payment.funded",
        "cairn.payment.reconciling",
        "cairn.delivery.failed",
        "cairn.marketplace.settings_changed",
    ):
        assert audiences(event_type) == [], event_type


def test_every_email_has_an_html_and_a_text_template_and_no_template_is_orphaned() -> None:
    expected = {f"{k.template}.{ext}" for k in all_kinds() for ext in ("html", "txt")}
    present = {p.name for p in TEMPLATES.iterdir() if not p.name.startswith("_")}
    assert expected == present


def _customer_task(event_type: str, **changes: object) -> list[str]:
    return audiences(event_type, actor=AS_CUSTOMER, **changes)


@pytest.mark.parametrize(
    ("state", "told"),
    [("draft", []), ("changes_requested", []), ("pending_approval", ["freelancer"])],
)
def test_the_freelancer_hears_of_an_edit_only_to_a_task_they_are_reviewing(
    state: str, told: list[str]
) -> None:
    """Issue 16: editing a never-sent draft emailed the freelancer, and an amendment (edit,
    then re-send) gave them two emails."""
    assert _customer_task("cairn.milestone.edited", state=state) == told


@pytest.mark.parametrize(
    ("previous", "told"),
    [("draft", []), ("changes_requested", ["freelancer"]), (None, ["freelancer"])],
)
def test_deleting_a_draft_the_freelancer_never_saw_emails_nobody(
    previous: str | None, told: list[str]
) -> None:
    assert _customer_task("cairn.milestone.deleted", previous_state=previous) == told
