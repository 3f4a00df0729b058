"""Payments outcomes arriving through the consumer handlers (the path Kafka drives):
failure and a second attempt, late and duplicate outcomes, and SCA's client secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cairn_chassis.db import Database
from cairn_chassis.outbox import utcnow
from cairn_contracts.service import timers

from .helpers import Api, problem

pytestmark = pytest.mark.integration


async def test_a_failed_payment_returns_to_approved_with_the_reason_and_can_be_paid_again(
    api: Api,
) -> None:
    deal = await api.deal()
    milestone_id = await deal.ready_to_pay()
    await deal.act(deal.customer, milestone_id, "pay")
    await api.payment_failed(deal, milestone_id, attempt=1, reason="Your card was declined.")

    m = await deal.milestone(milestone_id)
    assert m["state"] == "approved"
    assert m["payment_failure_reason"] == "Your card was declined."
    (failed,) = await deal.events("milestone.payment_failed")
    assert (failed["reason"], failed["attempt"], failed["failure_code"]) == (
        "Your card was declined.",
        1,
        "card_declined",
    )
    assert [h["to_state"] for h in await deal.history(milestone_id)][-2:] == [
        "funding",
        "approved",
    ]

    r = await deal.act(deal.customer, milestone_id, "pay")
    assert (r.json()["state"], r.json()["funding_attempt"]) == ("funding", 2)
    assert r.json()["payment_failure_reason"] is None
    attempts = [e["attempt"] for e in await deal.events("milestone.funding_requested")]
    assert attempts == [1, 2]
    await api.payment_funded(deal, milestone_id, attempt=2)
    assert (await deal.milestone(milestone_id))["state"] == "funded"


async def test_outcomes_of_an_old_attempt_and_redelivered_outcomes_change_nothing(
    api: Api,
) -> None:
    deal = await api.deal()
    milestone_id = await deal.ready_to_pay()
    await deal.act(deal.customer, milestone_id, "pay")
    await api.payment_failed(deal, milestone_id, attempt=1)
    await deal.act(deal.customer, milestone_id, "pay")  # attempt 2

    before = await api.fingerprint()
    await api.payment_funded(deal, milestone_id, attempt=1)  # late news of attempt 1
    await api.payment_failed(deal, milestone_id, attempt=1)
    assert await api.fingerprint() == before
    assert (await deal.milestone(milestone_id))["state"] == "funding"

    event_id = await api.payment_funded(deal, milestone_id, attempt=2)
    after = await api.fingerprint()
    # The same event delivered again (Kafka redelivery) is a no-op...
    base = await api._money(deal, milestone_id)
    from cairn_schemas.events import PaymentFunded

    await api.deliver(
        PaymentFunded(**base, attempt=2, payment_intent_id="pi_x", charge_id="ch_x"),
        event_id=event_id,
    )
    # ...and so is a second, different "funded" for a milestone already funded.
    await api.payment_funded(deal, milestone_id, attempt=2)
    await api.payment_failed(deal, milestone_id, attempt=2)
    assert await api.fingerprint() == after
    assert len(await deal.events("milestone.funded")) == 1
    assert (await deal.milestone(milestone_id))["state"] == "funded"


async def test_action_required_shows_the_client_secret_to_the_customer_only(api: Api) -> None:
    deal = await api.deal()
    milestone_id = await deal.ready_to_pay()
    await deal.act(deal.customer, milestone_id, "pay")
    await api.payment_action_required(deal, milestone_id, attempt=1, secret="pi_1_secret_abc")

    assert (await deal.milestone(milestone_id, by=deal.customer))[
        "payment_client_secret"
    ] == "pi_1_secret_abc"
    for viewer in (deal.freelancer, deal.operator):
        m = await deal.milestone(milestone_id, by=viewer)
        assert m["state"] == "funding"
        assert m["payment_client_secret"] is None
    (event,) = await deal.events("milestone.payment_action_required")
    assert event["attempt"] == 1
    history = await deal.history(milestone_id)
    assert (history[-1]["command"], history[-1]["to_state"]) == (
        "payment_action_required",
        "funding",
    )
    # Still being paid: not payable again; once funded the secret is gone.
    problem(await deal.act(deal.customer, milestone_id, "pay"), 409, "milestone.already_paid")
    await api.payment_funded(deal, milestone_id, attempt=1)
    m = await deal.milestone(milestone_id)
    assert (m["state"], m["payment_client_secret"]) == ("funded", None)


async def test_a_chargeback_freezes_the_milestone_visibly_and_nothing_orders_money_to_move(
    api: Api, db: Database
) -> None:
    deal = await api.deal(auto_release_after_days=5)
    milestone_id = await deal.submitted()
    requested_before = await deal.events("milestone.release_requested", "milestone.disputed")

    await api.payment_chargeback_opened(deal, milestone_id)

    m = await deal.milestone(milestone_id)
    assert m["state"] == "submitted"  # the workflow state is kept; the money is frozen
    assert m["chargeback_at"] is not None
    assert m["chargeback_reason"] == "fraudulent"
    last = (await deal.history(milestone_id))[-1]
    assert (last["command"], last["from_state"], last["to_state"]) == (
        "chargeback_opened",
        "submitted",
        "submitted",
    )
    for who, command, body in [
        (deal.customer, "release", None),
        (deal.customer, "dispute", {"reason": "Not delivered"}),
        (deal.customer, "request-refund", {"reason": "Please"}),
    ]:
        problem(await deal.act(who, milestone_id, command, body), 409, "milestone.chargeback_open")
    # The timers leave it alone: no auto-release, no reminder, long past every deadline.
    before, events_before = await deal.milestone(milestone_id), await deal.events()
    await timers.run_due(db, utcnow() + timedelta(days=200), reminder_before=timedelta(days=2))
    assert await deal.milestone(milestone_id) == before
    assert await deal.events() == events_before
    assert (
        await deal.events("milestone.release_requested", "milestone.disputed")
    ) == requested_before
