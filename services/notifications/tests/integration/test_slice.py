"""Events in on the real broker -> exactly the right branded emails caught by a real SMTP
server, once each, however often the broker delivers an event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cairn_schemas.samples import AS_FREELANCER

pytestmark = pytest.mark.integration


def header(message: dict[str, Any], name: str) -> str:
    return next(v for k, v in message["headers"] if k.lower() == name.lower())


async def test_a_contract_story_sends_each_party_exactly_their_emails(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    branding = story.event("cairn.marketplace.settings_changed")
    settings = branding.settings.model_copy(  # type: ignore[attr-defined]
        update={
            "currency": "EUR",
            "milestone_creator": "freelancer",
            "skip_freelancer_approval": False,
            "charge_on_freelancer_approval": False,
            "branding": branding.settings.branding.model_copy(  # type: ignore[attr-defined]
                update={
                    "display_name": "Bakers Guild",
                    "from_address": "hello@bakers-guild.example",
                    "support_address": "help@bakers-guild.example",
                    "accent_colour": "#aa3300",
                }
            ),
        }
    )
    # The settings travel on their own topic; the contract's events may be read first.
    harness.without_settings(story.marketplace_id)
    await harness.publish(story.event("cairn.proposal.submitted"))
    await harness.publish(branding.model_copy(update={"settings": settings}))
    await harness.publish(story.event("cairn.contract.started"))
    await harness.publish(
        story.event(
            "cairn.milestone.created",
            created_by="freelancer",
            state="approved",
            actor=AS_FREELANCER,
        )
    )
    await harness.publish(story.event("cairn.milestone.funded"))

    rows = await harness.settle(story.contract_id, 4)
    assert sorted((r.template, r.status) for r in rows) == [
        ("milestone_created.customer", "delivered"),
        ("milestone_funded.freelancer", "delivered"),
        ("proposal_accepted.freelancer", "delivered"),
        ("proposal_submitted.customer", "delivered"),
    ]
    to_customer = await harness.mail_to(story.customer.email)
    to_freelancer = await harness.mail_to(story.freelancer.email)
    assert sorted(m["subject"] for m in to_customer) == [
        "New milestone “Wireframes” (€1,500.00) is ready for you to fund",
        "New proposal from Grace Hopper for “Landing page for a bakery”",
    ]
    assert sorted(m["subject"] for m in to_freelancer) == [
        "Ada Lovelace accepted your proposal for “Landing page for a bakery”",
        "€1,500.00 is in escrow for “Wireframes”: you can start work",
    ]
    for message in to_customer + to_freelancer:
        assert header(message, "From") == "Bakers Guild <hello@bakers-guild.example>"
        assert header(message, "Reply-To") == "help@bakers-guild.example"
        assert header(message, "Auto-Submitted") == "auto-generated"
        assert "#aa3300" in message["html"]
        assert "help@bakers-guild.example" in message["text"]
        assert (
            f"https://app.example/{story.marketplace_id}/contracts/{story.contract_id}"
            in message["links"]
        )
    funded = next(m for m in to_freelancer if "escrow" in m["subject"])
    assert "€1,500.00" in funded["text"]
    assert "€1,500.00" in funded["html"]
    assert "Hello Grace Hopper" in funded["text"]


async def test_an_event_delivered_three_times_sends_one_email(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    proposal = story.event("cairn.proposal.submitted")
    event_id = await harness.publish(proposal)
    await harness.publish(proposal, event_id=event_id)
    await harness.publish(proposal, event_id=event_id)

    rows = await harness.settle(story.contract_id, 1)
    await asyncio.sleep(1.0)  # give any duplicate every chance to show up
    rows = await harness.settle(story.contract_id, 1)
    assert [r.status for r in rows] == ["delivered"]
    caught = await harness.mail_to(story.customer.email)
    assert len(caught) == 1
    assert caught[0]["message_id"] == rows[0].message_id


async def test_an_email_waits_for_its_marketplace_s_branding_and_then_carries_it(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    harness.without_settings(story.marketplace_id)
    await harness.publish(story.event("cairn.proposal.submitted"))
    await asyncio.sleep(1.0)
    assert await harness.mail_to(story.customer.email) == [], "no unbranded email goes out"

    await harness.publish(story.event("cairn.marketplace.settings_changed"))
    await harness.settle(story.contract_id, 1)
    [message] = await harness.mail_to(story.customer.email)
    brand = story.event("cairn.marketplace.settings_changed").settings.branding
    assert header(message, "From") == f"{brand.display_name} <{brand.from_address}>"


async def test_an_event_that_overtakes_its_proposal_is_emailed_once_the_proposal_arrives(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    # Payments events travel on their own topic and can arrive before the contract's.
    await harness.publish(story.event("cairn.payment.release_pending"))
    await asyncio.sleep(1.0)
    assert await harness.mail_to(story.freelancer.email) == []

    await harness.publish(story.event("cairn.contract.started"))
    rows = await harness.settle(story.contract_id, 2)
    assert sorted((r.template, r.status) for r in rows) == [
        ("proposal_accepted.freelancer", "delivered"),
        ("release_pending_payout_details.freelancer", "delivered"),
    ]
    subjects = sorted(m["subject"] for m in await harness.mail_to(story.freelancer.email))
    assert subjects == [
        "Ada Lovelace accepted your proposal for “Landing page for a bakery”",
        "Add your payout details to receive €1,500.00",
    ]


async def test_html_in_a_cover_letter_reaches_the_customer_as_text(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    letter = '<script>alert("hi")</script><a href="https://evil.example">portfolio</a>'
    await harness.publish(story.event("cairn.proposal.submitted", cover_letter=letter))
    await harness.settle(story.contract_id, 1)
    [message] = await harness.mail_to(story.customer.email)
    assert "<script>" not in message["html"]
    assert 'href="https://evil.example"' not in message["html"]
    assert "&lt;script&gt;" in message["html"]
    assert letter in message["text"]


async def test_operators_page_through_their_marketplace_s_delivery_log(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    await harness.publish(story.event("cairn.proposal.submitted"))
    await harness.publish(story.event("cairn.contract.started"))
    await harness.publish(story.event("cairn.milestone.funded"))
    await harness.settle(story.contract_id, 3)
    auth = harness.token(story.marketplace_id)

    async def page(**params: Any) -> list[dict[str, Any]]:
        response = await harness.http.get(
            "/v1/deliveries", params={"contract_id": story.contract_id, **params}, headers=auth
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    everything = await page()
    assert sorted(i["template"] for i in everything) == [
        "milestone_funded.freelancer",
        "proposal_accepted.freelancer",
        "proposal_submitted.customer",
    ]
    assert all(i["status"] == "delivered" and i["attempts"] == 1 for i in everything)
    assert [i["id"] for i in await page(limit=2) + await page(limit=2, offset=2)] == [
        i["id"] for i in everything
    ]
    assert await page(status="failed") == []
    bad = await harness.http.get("/v1/deliveries", params={"status": "lost"}, headers=auth)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    anonymous = await harness.http.get("/v1/deliveries")
    assert anonymous.status_code == 401


async def test_a_customer_s_draft_and_amendment_email_the_freelancer_once(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    """Issue 16: editing and deleting a draft the freelancer was never sent emailed them,
    and an amendment (edit, then re-send) gave them two emails."""
    from cairn_schemas.samples import AS_CUSTOMER

    await harness.publish(story.event("cairn.proposal.submitted"))
    draft = {"actor": AS_CUSTOMER, "milestone_id": f"ms_draft_{story.uid}"}
    await harness.publish(story.event("cairn.milestone.edited", state="draft", **draft))
    await harness.publish(
        story.event("cairn.milestone.deleted", state="deleted", previous_state="draft", **draft)
    )
    amended = {"actor": AS_CUSTOMER, "milestone_id": f"ms_amended_{story.uid}"}
    await harness.publish(
        story.event("cairn.milestone.edited", state="changes_requested", **amended)
    )
    await harness.publish(
        story.event("cairn.milestone.sent_for_approval", state="pending_approval", **amended)
    )

    rows = await harness.settle(story.contract_id, 2)
    await asyncio.sleep(1.0)  # any extra email has every chance to show up
    rows = await harness.settle(story.contract_id, 2)
    to_freelancer = sorted(r.template for r in rows if r.recipient_role == "freelancer")
    assert to_freelancer == ["milestone_sent_for_approval.freelancer"]
    assert len(await harness.mail_to(story.freelancer.email)) == 1


async def test_a_dispute_decision_emails_each_party_once_not_decided_then_settled(
    harness: Any, story: Any, sink_without_faults: Any
) -> None:
    await harness.publish(story.event("cairn.proposal.submitted"))
    await harness.publish(story.event("cairn.dispute.resolved"))
    await harness.publish(story.event("cairn.milestone.settled"))

    rows = await harness.settle(story.contract_id, 3)
    await asyncio.sleep(1.0)
    rows = await harness.settle(story.contract_id, 3)
    assert sorted(r.template for r in rows) == [
        "dispute_resolved.customer",
        "dispute_resolved.freelancer",
        "proposal_submitted.customer",
    ]
    assert len(await harness.mail_to(story.freelancer.email)) == 1
