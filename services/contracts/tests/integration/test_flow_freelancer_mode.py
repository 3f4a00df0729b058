"""The guide's "Freelancer Creates the Milestones" flow through the HTTP API."""

from __future__ import annotations

import pytest

from .helpers import Api

pytestmark = pytest.mark.integration


async def test_freelancer_creates_customer_pays_freelancer_completes_customer_releases(
    api: Api,
) -> None:
    deal = await api.deal()
    assert (await deal.accept()).json()["state"] == "live"

    r = await deal.create(deal.freelancer, amount=120_00)
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["state"] == "approved"  # the customer paying is their acceptance
    assert r.headers["ETag"] == f'"{m["version"]}"'

    r = await deal.act(deal.customer, m["id"], "pay")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["funding_attempt"]) == ("funding", 1)
    await api.payment_funded(deal, m["id"], attempt=1)
    r = await deal.act(deal.freelancer, m["id"], "complete")
    assert r.json()["state"] == "submitted"
    r = await deal.act(deal.customer, m["id"], "release")
    assert r.json()["state"] == "releasing"
    await api.payment_released(deal, m["id"])
    assert (await deal.milestone(m["id"]))["state"] == "released"

    types = [e["type"] for e in await deal.events()]
    assert types == [
        "proposal.submitted",
        "contract.started",
        "milestone.created",
        "milestone.funding_requested",
        "milestone.funded",
        "milestone.submitted",
        "milestone.release_requested",
        "milestone.released",
    ]
    (funding,) = await deal.events("milestone.funding_requested")
    assert funding["attempt"] == 1
    assert funding["amount"] == 120_00
    assert funding["currency"] == "EUR"
    assert funding["platform_fee_bps"] == 1000
    assert funding["trigger"] == "customer"
    assert funding["customer_id"] == deal.customer.sub
    assert funding["freelancer_id"] == deal.freelancer.sub
    (release,) = await deal.events("milestone.release_requested")
    assert (release["trigger"], release["platform_fee_bps"]) == ("customer", 1000)

    history = await deal.history(m["id"])
    assert [(h["command"], h["from_state"], h["to_state"]) for h in history] == [
        ("create", None, "approved"),
        ("pay", "approved", "funding"),
        ("payment_succeeded", "funding", "funded"),
        ("complete", "funded", "submitted"),
        ("release", "submitted", "releasing"),
        ("release_completed", "releasing", "released"),
    ]
    assert [h["actor_role"] for h in history] == [
        "freelancer",
        "customer",
        "payments",
        "freelancer",
        "customer",
        "payments",
    ]
    assert all(h["event_id"] for h in history)
