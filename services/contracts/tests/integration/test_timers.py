"""Timers with a controllable clock: auto-release with its reminder, the refund-request
deadline, the escrow holding limit; each fires once even when passes run concurrently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from cairn_chassis.db import Database
from cairn_chassis.outbox import utcnow
from cairn_contracts.service import timers

from .helpers import Api

pytestmark = pytest.mark.integration

BEFORE = timedelta(days=2)


async def run(db: Database, days: float) -> None:
    await timers.run_due(db, utcnow() + timedelta(days=days), reminder_before=BEFORE)


async def test_submitted_work_is_released_automatically_once_after_one_reminder(
    api: Api, db: Database
) -> None:
    deal = await api.deal(auto_release_after_days=5)
    milestone_id = await deal.submitted()
    m = await deal.milestone(milestone_id)
    assert m["auto_release_at"] is not None
    (submitted,) = await deal.events("milestone.submitted")
    assert submitted["auto_release_at"] is not None

    await run(db, 1)
    assert await deal.events("milestone.auto_release_reminder") == []
    await run(db, 3.5)  # within two days of the deadline
    await run(db, 3.6)
    await asyncio.gather(run(db, 3.7), run(db, 3.7))
    (reminder,) = await deal.events("milestone.auto_release_reminder")
    assert reminder["milestone_id"] == milestone_id
    assert (await deal.milestone(milestone_id))["state"] == "submitted"

    await run(db, 5.1)
    await run(db, 5.2)
    await asyncio.gather(run(db, 6), run(db, 6))
    (release,) = await deal.events("milestone.release_requested")
    assert (release["trigger"], release["actor"]["role"]) == ("auto_release", "system")
    assert (await deal.milestone(milestone_id))["state"] == "releasing"
    history = await deal.history(milestone_id)
    assert (history[-1]["command"], history[-1]["actor_role"]) == ("auto_release", "system")
    assert len(await deal.events("milestone.auto_release_reminder")) == 1


async def test_concurrent_timer_passes_release_exactly_once(api: Api, db: Database) -> None:
    deal = await api.deal(auto_release_after_days=1)
    milestone_id = await deal.submitted()
    await asyncio.gather(*(run(db, 2) for _ in range(4)))
    assert len(await deal.events("milestone.release_requested")) == 1
    assert len(await deal.events("milestone.auto_release_reminder")) <= 1
    assert [h["command"] for h in await deal.history(milestone_id)].count("auto_release") == 1


async def test_a_dispute_or_an_open_refund_request_pauses_auto_release(
    api: Api, db: Database
) -> None:
    deal = await api.deal(auto_release_after_days=1)
    disputed, _ = await deal.disputed()
    asked = await deal.submitted()
    await deal.act(deal.customer, asked, "request-refund", {"reason": "Not what I asked"})
    await run(db, 1.5)  # past auto-release, before the refund deadline (7 days)
    assert (await deal.milestone(disputed))["state"] == "disputed"
    assert (await deal.milestone(asked))["state"] == "submitted"
    assert await deal.events("milestone.release_requested") == []


async def test_an_unanswered_refund_request_refunds_at_its_deadline_after_a_reminder(
    api: Api, db: Database
) -> None:
    deal = await api.deal(refund_response_days=3)
    milestone_id = await deal.funded()
    await deal.act(deal.customer, milestone_id, "request-refund", {"reason": "Gone quiet"})
    await run(db, 1)
    assert await deal.events("milestone.refund_deadline_reminder") == []
    await asyncio.gather(run(db, 2.5), run(db, 2.5))  # within a day (half of two) of it
    (reminder,) = await deal.events("milestone.refund_deadline_reminder")
    assert reminder["deadline"] is not None
    await asyncio.gather(run(db, 3.5), run(db, 3.5))
    (refund,) = await deal.events("milestone.refund_ordered")
    assert refund["reason"] == "refund_deadline"
    m = await deal.milestone(milestone_id)
    assert (m["state"], m["refund_requested"]) == ("refunding", False)
    await run(db, 10)
    assert len(await deal.events("milestone.refund_ordered")) == 1
    assert len(await deal.events("milestone.refund_deadline_reminder")) == 1


async def test_a_refund_request_the_customer_overtook_by_releasing_is_closed(
    api: Api, db: Database
) -> None:
    deal = await api.deal(refund_response_days=3)
    milestone_id = await deal.submitted()
    await deal.act(deal.customer, milestone_id, "request-refund", {"reason": "Unsure"})
    r = await deal.act(deal.customer, milestone_id, "release")  # changed their mind
    assert (r.json()["state"], r.json()["refund_requested"]) == ("releasing", False)
    await run(db, 2.5)
    await run(db, 4)
    # The freelancer is not asked to answer a request that no longer stands.
    assert await deal.events("milestone.refund_deadline_reminder") == []
    assert await deal.events("milestone.refund_ordered") == []


@pytest.mark.parametrize(
    ("fallback", "country", "limit_days", "event", "detail"),
    [
        ("refund", None, 90, "milestone.refund_ordered", ("reason", "holding_limit")),
        ("release", None, 90, "milestone.release_requested", ("trigger", "holding_limit")),
        ("refund", "US", 730, "milestone.refund_ordered", ("reason", "holding_limit")),
    ],
)
async def test_escrow_reaching_the_holding_limit_takes_the_marketplace_fallback(
    api: Api,
    db: Database,
    fallback: str,
    country: str | None,
    limit_days: int,
    event: str,
    detail: tuple[str, str],
) -> None:
    deal = await api.deal(holding_limit_fallback=fallback)
    if country:
        deal = await _with_country(api, deal, country)
    milestone_id = await deal.funded()
    await run(db, limit_days - 3)
    assert await deal.events("milestone.holding_limit_reminder") == []
    await asyncio.gather(run(db, limit_days - 1), run(db, limit_days - 1))
    (reminder,) = await deal.events("milestone.holding_limit_reminder")
    assert reminder["fallback"] == fallback
    assert (await deal.milestone(milestone_id))["state"] == "funded"
    await asyncio.gather(run(db, limit_days + 0.1), run(db, limit_days + 0.1))
    (moved,) = await deal.events(event)
    assert moved[detail[0]] == detail[1]
    history = await deal.history(milestone_id)
    assert (history[-1]["command"], history[-1]["actor_role"]) == ("holding_limit", "system")


@pytest.mark.parametrize("waiting", ["releasing", "disputed"])
async def test_near_the_holding_limit_a_waiting_release_or_a_dispute_is_reminded_not_moved(
    api: Api, db: Database, waiting: str
) -> None:
    # A release waiting for the freelancer's payout details (payments has not settled it)
    # or a dispute waiting for an operator: reminded before the limit, and at the limit the
    # clock decides nothing (decision 18).
    deal = await api.deal(holding_limit_fallback="refund")
    if waiting == "releasing":
        milestone_id = await deal.submitted()
        await deal.act(deal.customer, milestone_id, "release")
    else:
        milestone_id, _ = await deal.disputed()
    await run(db, 89)
    (reminder,) = await deal.events("milestone.holding_limit_reminder")
    assert (reminder["milestone_id"], reminder["state"]) == (milestone_id, waiting)
    money_orders = ("milestone.refund_ordered", "milestone.release_requested")
    before = await deal.events(*money_orders)
    await asyncio.gather(run(db, 90.1), run(db, 91))
    assert (await deal.milestone(milestone_id))["state"] == waiting
    assert await deal.events(*money_orders) == before
    assert len(await deal.events("milestone.holding_limit_reminder")) == 1


async def _with_country(api: Api, deal: object, country: str) -> object:
    """The same marketplace, but a proposal from a freelancer in ``country``."""
    from .helpers import Deal

    assert isinstance(deal, Deal)
    freelancer = api.user("freelancer", deal.marketplace)
    r = await api.post(
        freelancer,
        f"/v1/jobs/{deal.job_id}/proposals",
        {"cover_letter": "Hi", "country": country},
    )
    assert r.status_code == 201, r.text
    deal.freelancer = freelancer
    deal.contract_id = r.json()["id"]
    return deal
