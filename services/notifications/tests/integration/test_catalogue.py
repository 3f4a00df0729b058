"""Every event type of the catalogue, through the real broker and SMTP server: the right
people get exactly one email each, with the right subject, amounts and branding; nobody
else gets one. The expectations are written out here, not derived from the catalogue."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from cairn_schemas.base import Actor
from cairn_schemas.samples import AS_CUSTOMER, AS_FREELANCER, AS_OPERATOR

pytestmark = pytest.mark.integration

BRAND = "Bakers Guild"
FROM = "Bakers Guild <hello@bakers-guild.example>"
JOB = "“Landing page for a bakery”"

# (case id, event type, changes to the sample, {audience: subject}, text every email shows)
CASES: list[tuple[str, str, dict[str, Any], dict[str, str], list[str]]] = [
    (
        "proposal-submitted",
        "cairn.proposal.submitted",
        {},
        {"customer": f"New proposal from Grace Hopper for {JOB}"},
        ["I have built twenty bakery sites."],
    ),
    (
        "proposal-declined",
        "cairn.proposal.declined",
        {},
        {"freelancer": f"Your proposal for {JOB} was declined"},
        ["We chose someone local."],
    ),
    (
        "proposal-withdrawn",
        "cairn.proposal.withdrawn",
        {},
        {"customer": f"Grace Hopper withdrew their proposal for {JOB}"},
        ["Fully booked."],
    ),
    (
        "contract-started",
        "cairn.contract.started",
        {},
        {"freelancer": f"Ada Lovelace accepted your proposal for {JOB}"},
        [],
    ),
    (
        "contract-ended-by-customer",
        "cairn.contract.ended",
        {},
        {"freelancer": f"The contract for {JOB} has ended"},
        [],
    ),
    (
        "milestone-created-freelancer-mode",
        "cairn.milestone.created",
        {"created_by": "freelancer", "state": "approved", "actor": AS_FREELANCER},
        {"customer": "New milestone “Wireframes” (€1,500.00) is ready for you to fund"},
        ["€1,500.00", "Three wireframes"],
    ),
    ("milestone-created-customer-mode", "cairn.milestone.created", {}, {}, []),
    (
        "milestone-edited-by-customer",
        "cairn.milestone.edited",
        {"state": "pending_approval"},  # the freelancer is reviewing it
        {"freelancer": "The task “Wireframes” was changed"},
        ["€1,500.00", "€1,200.00"],
    ),
    (
        "milestone-edited-by-freelancer",
        "cairn.milestone.edited",
        {"actor": AS_FREELANCER},
        {"customer": "The milestone “Wireframes” was changed"},
        ["€1,500.00", "€1,200.00"],
    ),
    (
        "milestone-sent-for-approval",
        "cairn.milestone.sent_for_approval",
        {},
        {"freelancer": "New task to review: “Wireframes” (€1,500.00)"},
        ["Three wireframes"],
    ),
    (
        "milestone-approved",
        "cairn.milestone.approved",
        {},
        {"customer": "Grace Hopper approved the task “Wireframes”"},
        ["€1,500.00"],
    ),
    (
        "milestone-changes-requested",
        "cairn.milestone.changes_requested",
        {},
        {"customer": "Grace Hopper asked for changes to “Wireframes”"},
        ["Could we add the about page for the same price?"],
    ),
    (
        "milestone-deleted-by-customer",
        "cairn.milestone.deleted",
        {},
        {"freelancer": "The task “Wireframes” was deleted"},
        ["€1,500.00"],
    ),
    (
        "milestone-deleted-by-freelancer",
        "cairn.milestone.deleted",
        {"actor": AS_FREELANCER},
        {"customer": "The milestone “Wireframes” was deleted"},
        ["€1,500.00"],
    ),
    ("milestone-funding-requested", "cairn.milestone.funding_requested", {}, {}, []),
    (
        "milestone-funded",
        "cairn.milestone.funded",
        {},
        {"freelancer": "€1,500.00 is in escrow for “Wireframes”: you can start work"},
        ["start work now"],
    ),
    (
        "milestone-funded-in-yen",
        "cairn.milestone.funded",
        {"currency": "JPY"},
        {"freelancer": "¥150,000 is in escrow for “Wireframes”: you can start work"},
        ["¥150,000"],
    ),
    (
        "milestone-payment-failed",
        "cairn.milestone.payment_failed",
        {},
        {"customer": "Your payment of €1,500.00 for “Wireframes” did not go through"},
        ["Your card was declined."],
    ),
    (
        "milestone-payment-action-required",
        "cairn.milestone.payment_action_required",
        {},
        {"customer": "Please confirm your payment of €1,500.00 for “Wireframes”"},
        [],
    ),
    (
        "milestone-submitted",
        "cairn.milestone.submitted",
        {},
        {"customer": "Work submitted for “Wireframes”: please review"},
        ["17 March 2025, 09:30 UTC"],
    ),
    ("milestone-release-requested", "cairn.milestone.release_requested", {}, {}, []),
    (
        "milestone-released",
        "cairn.milestone.released",
        {},
        {
            "freelancer": "You have been paid €1,350.00 for “Wireframes”",
            "customer": "Receipt: €1,500.00 released for “Wireframes”",
        },
        ["€1,500.00"],
    ),
    (
        "milestone-refund-requested",
        "cairn.milestone.refund_requested",
        {},
        {
            "freelancer": "Ada Lovelace asked for a refund of “Wireframes”",
            "customer": "Your refund request for “Wireframes” was sent",
        },
        ["8 March 2025, 09:30 UTC"],
    ),
    (
        "milestone-refund-request-declined",
        "cairn.milestone.refund_request_declined",
        {},
        {"customer": "Your refund request for “Wireframes” was declined"},
        ["The wireframes were delivered."],
    ),
    ("milestone-refund-ordered", "cairn.milestone.refund_ordered", {}, {}, []),
    ("milestone-split-ordered", "cairn.milestone.split_ordered", {}, {}, []),
    (
        "milestone-refunded",
        "cairn.milestone.refunded",
        {},
        {
            "customer": "€1,500.00 for “Wireframes” was refunded to you",
            "freelancer": "€1,500.00 for “Wireframes” was refunded to the customer",
        },
        [],
    ),
    (
        "milestone-settled",
        "cairn.milestone.settled",
        {},
        {
            "customer": "The dispute over “Wireframes” is settled",
            "freelancer": "The dispute over “Wireframes” is settled",
        },
        ["€500.00"],
    ),
    (
        "auto-release-reminder",
        "cairn.milestone.auto_release_reminder",
        {},
        {"customer": "“Wireframes” will be released to Grace Hopper on 17 March 2025, 09:30 UTC"},
        ["€1,500.00"],
    ),
    (
        "refund-deadline-reminder",
        "cairn.milestone.refund_deadline_reminder",
        {},
        {
            "freelancer": "Please answer the refund request for “Wireframes” by "
            "8 March 2025, 09:30 UTC"
        },
        ["€1,500.00"],
    ),
    (
        "holding-limit-reminder",
        "cairn.milestone.holding_limit_reminder",
        {},
        {
            "customer": "Action needed: the escrow for “Wireframes” ends on 1 June 2025, 09:30 UTC",
            "operators": "Escrow holding limit near for “Wireframes” (€1,500.00)",
        },
        ["€1,500.00"],
    ),
    (
        "holding-limit-reminder-release-waiting-for-payout-details",
        "cairn.milestone.holding_limit_reminder",
        {"state": "releasing"},
        {
            "freelancer": "Add your payout details: “Wireframes” waits for you until "
            "1 June 2025, 09:30 UTC",
            "operators": "Escrow holding limit near for “Wireframes” (€1,500.00)",
        },
        ["€1,500.00", "1 June 2025, 09:30 UTC"],
    ),
    (
        "dispute-opened",
        "cairn.dispute.opened",
        {},
        {
            "freelancer": "Ada Lovelace disputed “Wireframes”",
            "operators": f"Dispute to decide: “Wireframes” (€1,500.00) on {JOB}",
        },
        ["Only two of three wireframes."],
    ),
    (
        "dispute-resolved",
        "cairn.dispute.resolved",
        {},
        {
            "customer": "The dispute over “Wireframes” was decided",
            "freelancer": "The dispute over “Wireframes” was decided",
        },
        ["€1,000.00", "€500.00"],
    ),
    (
        "message-from-freelancer",
        "cairn.message.posted",
        {},
        {"customer": f"New message from Grace Hopper on {JOB}"},
        ["First drafts are up, have a look."],
    ),
    (
        "message-from-customer",
        "cairn.message.posted",
        {"author": AS_CUSTOMER},
        {"freelancer": f"New message from Ada Lovelace on {JOB}"},
        ["First drafts are up, have a look."],
    ),
    (
        "message-from-operator",
        "cairn.message.posted",
        {"author": AS_OPERATOR},
        {
            "customer": f"New message from {BRAND} support on {JOB}",
            "freelancer": f"New message from {BRAND} support on {JOB}",
        },
        [],
    ),
    (
        "release-pending-payout-details",
        "cairn.payment.release_pending",
        {},
        {"freelancer": "Add your payout details to receive €1,500.00"},
        ["Add your bank account to receive payouts."],
    ),
    (
        "chargeback-opened",
        "cairn.payment.chargeback_opened",
        {},
        {"operators": f"Chargeback opened: €1,500.00 on {JOB}"},
        ["fraudulent"],
    ),
    (
        "chargeback-after-release",
        "cairn.payment.chargeback_opened",
        {"funds_released": True, "owed_by_freelancer": 1_350_00},
        {"operators": f"Chargeback opened: €1,500.00 on {JOB}"},
        ["Owed by the freelancer", "€1,350.00 (the marketplace bears the rest)"],
    ),
    ("payment-funded", "cairn.payment.funded", {}, {}, []),
    ("payment-failed", "cairn.payment.failed", {}, {}, []),
    ("payment-action-required", "cairn.payment.action_required", {}, {}, []),
    ("payment-released", "cairn.payment.released", {}, {}, []),
    ("payment-refunded", "cairn.payment.refunded", {}, {}, []),
    ("payment-split-settled", "cairn.payment.split_settled", {}, {}, []),
    ("payment-reconciling", "cairn.payment.reconciling", {}, {}, []),
]


@pytest.fixture(scope="module")
async def bakery(harness: Any, story_factory: Any) -> Any:
    """A branded marketplace with a contract the directory knows."""
    story = story_factory()
    changed = story.event("cairn.marketplace.settings_changed")
    settings = changed.settings.model_copy(
        update={
            "branding": changed.settings.branding.model_copy(
                update={
                    "display_name": BRAND,
                    "from_address": "hello@bakers-guild.example",
                    "support_address": "help@bakers-guild.example",
                    "accent_colour": "#aa3300",
                }
            )
        }
    )
    await harness.publish(changed.model_copy(update={"settings": settings}))
    await asyncio.sleep(0.5)
    await harness.publish(story.event("cairn.proposal.submitted"))
    await harness.settle(story.contract_id, 1)
    return story


def _address(harness: Any, story: Any, audience: str) -> str:
    return {
        "customer": story.customer.email,
        "freelancer": story.freelancer.email,
        # A marketplace's own operators, at its support address (issue 16, item 12).
        "operators": "help@bakers-guild.example",
    }[audience]


def _header(message: dict[str, Any], name: str) -> str:
    return next(v for k, v in message["headers"] if k.lower() == name.lower())


@pytest.mark.parametrize(
    ("event_type", "changes", "expected", "shown"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_each_event_emails_exactly_the_right_people(
    harness: Any,
    bakery: Any,
    sink_without_faults: Any,
    event_type: str,
    changes: dict[str, Any],
    expected: dict[str, str],
    shown: list[str],
) -> None:
    event = bakery.event(event_type, **changes)
    event_id = await harness.publish(event)
    if expected:
        rows = await _settled_rows(harness, event_id, len(expected))
    else:
        # A later event on the same partition is processed after this one.
        marker = bakery.event("cairn.message.posted", author=Actor(user_id="x", role="customer"))
        if event.topic != marker.topic:
            marker = bakery.event("cairn.payment.release_pending")
        marker_id = await harness.publish(marker)
        await _settled_rows(harness, marker_id, 1)
        rows = await _settled_rows(harness, event_id, 0, timeout=0.2)
    assert sorted((r.recipient_role, r.status) for r in rows) == sorted(
        ("operator" if a == "operators" else a, "delivered") for a in expected
    )
    for audience, subject in expected.items():
        address = _address(harness, bakery, audience)
        mine = [
            m for m in await harness.mail_to(address) if _header(m, "X-Cairn-Event-Id") == event_id
        ]
        assert len(mine) == 1, f"{audience} got {len(mine)} emails"
        [message] = mine
        assert message["subject"] == subject
        assert _header(message, "From") == FROM
        assert "#aa3300" in message["html"]
        assert "help@bakers-guild.example" in message["text"]
        for text in shown:
            assert text in message["text"]
            assert text in message["html"] or text.replace("'", "&#39;") in message["html"]
        assert "pi_0001_secret_abc" not in message["raw"], "client secrets stay out of email"
    everyone = [_address(harness, bakery, a) for a in ("customer", "freelancer", "operators")]
    # The deployment-wide alert addresses are only the fallback of an unbranded marketplace.
    everyone += harness.settings.operator_alert_addresses
    total = [
        m
        for a in everyone
        for m in await harness.mail_to(a)
        if _header(m, "X-Cairn-Event-Id") == event_id
    ]
    assert len(total) == len(expected), "nobody else gets an email about this event"


async def _settled_rows(harness: Any, event_id: str, count: int, timeout: float = 15) -> list[Any]:
    from cairn_notifications.adapters.tables import EmailDelivery
    from sqlmodel import col, select

    deadline = time.monotonic() + timeout
    while True:
        async with harness.db.transaction() as session:
            rows = list(
                (
                    await session.exec(
                        select(EmailDelivery).where(col(EmailDelivery.source_event_id) == event_id)
                    )
                ).all()
            )
        settled = all(r.status in ("delivered", "failed") for r in rows)
        if (len(rows) >= count and settled) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)
