"""Disputes resolved by operators, refunds given or requested."""

from __future__ import annotations

import pytest

from .helpers import Api, problem

pytestmark = pytest.mark.integration


async def test_operator_resolves_a_dispute_by_releasing(api: Api) -> None:
    deal = await api.deal()
    milestone_id, dispute_id = await deal.disputed()
    (opened,) = await deal.events("dispute.opened")
    assert (opened["dispute_id"], opened["origin"], opened["reason"]) == (
        dispute_id,
        "customer",
        "Not delivered",
    )
    queue = await api.get(deal.operator, "/v1/disputes", status="open")
    assert [d["id"] for d in queue.json()["items"]] == [dispute_id]

    r = await api.post(
        deal.operator,
        f"/v1/disputes/{dispute_id}/resolve",
        {"outcome": "release", "note": "Work was delivered"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["amount_to_freelancer"], r.json()["amount_to_customer"]) == (50_000, 0)
    assert (await deal.milestone(milestone_id))["state"] == "releasing"
    (release,) = await deal.events("milestone.release_requested")
    assert (release["trigger"], release["dispute_id"]) == ("dispute", dispute_id)
    problem(
        await api.post(
            deal.operator,
            f"/v1/disputes/{dispute_id}/resolve",
            {"outcome": "refund", "note": "Changed my mind"},
        ),
        409,
        "dispute.already_resolved",
    )
    await api.payment_released(deal, milestone_id)
    assert (await deal.milestone(milestone_id))["state"] == "released"


async def test_operator_resolves_a_dispute_by_refunding(api: Api) -> None:
    deal = await api.deal()
    milestone_id, dispute_id = await deal.disputed()
    r = await api.post(
        deal.operator,
        f"/v1/disputes/{dispute_id}/resolve",
        {"outcome": "refund", "note": "Nothing was delivered"},
    )
    assert (r.json()["amount_to_freelancer"], r.json()["amount_to_customer"]) == (0, 50_000)
    (refund,) = await deal.events("milestone.refund_ordered")
    assert (refund["reason"], refund["dispute_id"], refund["amount"]) == (
        "dispute",
        dispute_id,
        50_000,
    )
    await api.payment_refunded(deal, milestone_id)
    assert (await deal.milestone(milestone_id))["state"] == "refunded"


async def test_a_split_adds_up_exactly_and_an_invalid_split_changes_nothing(api: Api) -> None:
    deal = await api.deal()
    milestone_id, dispute_id = await deal.disputed()
    before = await api.fingerprint()
    for amount in (None, 50_000, 60_000):
        body = {"outcome": "split", "note": "Half done"}
        if amount is not None:
            body["amount_to_freelancer"] = amount
        problem(
            await api.post(deal.operator, f"/v1/disputes/{dispute_id}/resolve", body),
            422,
            "dispute.invalid_split",
        )
    problem(
        await api.post(
            deal.operator,
            f"/v1/disputes/{dispute_id}/resolve",
            {"outcome": "split", "note": "x", "amount_to_freelancer": 0},
        ),
        422,
        "request.invalid",
    )
    assert await api.fingerprint() == before

    r = await api.post(
        deal.operator,
        f"/v1/disputes/{dispute_id}/resolve",
        {"outcome": "split", "note": "Half done", "amount_to_freelancer": 20_001},
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["outcome"], d["amount_to_freelancer"], d["amount_to_customer"]) == (
        "split",
        20_001,
        29_999,
    )
    (split,) = await deal.events("milestone.split_ordered")
    assert split["amount_to_freelancer"] + split["amount_to_customer"] == split["amount"] == 50_000
    (resolved,) = await deal.events("dispute.resolved")
    assert resolved["amount_to_freelancer"] + resolved["amount_to_customer"] == 50_000
    assert (await deal.milestone(milestone_id))["state"] == "releasing"
    # A "released" outcome answers an order this milestone never gave: ignored.
    await api.payment_released(deal, milestone_id)
    assert (await deal.milestone(milestone_id))["state"] == "releasing"
    assert await deal.events("milestone.released") == []
    await api.payment_split_settled(deal, milestone_id, dispute_id=dispute_id, to_freelancer=20_001)
    assert (await deal.milestone(milestone_id))["state"] == "settled"
    (settled,) = await deal.events("milestone.settled")
    assert (
        settled["amount_to_freelancer"] + settled["platform_fee"] + settled["amount_refunded"]
        == 50_000
    )


async def test_the_freelancer_gives_the_money_back(api: Api) -> None:
    deal = await api.deal()
    milestone_id = await deal.funded()
    problem(await deal.act(deal.customer, milestone_id, "refund"), 403, "auth.wrong_role")
    r = await deal.act(deal.freelancer, milestone_id, "refund")
    assert r.json()["state"] == "refunding"
    (refund,) = await deal.events("milestone.refund_ordered")
    assert refund["reason"] == "freelancer_refund"
    await api.payment_refunded(deal, milestone_id)
    assert (await deal.milestone(milestone_id))["state"] == "refunded"


async def test_a_refund_request_accepted_refunds(api: Api) -> None:
    deal = await api.deal()
    milestone_id = await deal.submitted()
    r = await deal.act(deal.customer, milestone_id, "request-refund", {"reason": "Wrong colours"})
    assert (r.json()["state"], r.json()["refund_requested"]) == ("submitted", True)
    assert r.json()["refund_respond_by"] is not None
    (requested,) = await deal.events("milestone.refund_requested")
    assert requested["reason"] == "Wrong colours"
    problem(
        await deal.act(deal.customer, milestone_id, "request-refund", {"reason": "Again"}),
        409,
        "milestone.refund_already_requested",
    )
    r = await deal.act(deal.freelancer, milestone_id, "refund-request/answer", {"accept": True})
    assert (r.json()["state"], r.json()["refund_requested"]) == ("refunding", False)
    (refund,) = await deal.events("milestone.refund_ordered")
    assert refund["reason"] == "refund_request_accepted"


async def test_a_refund_request_declined_opens_a_dispute(api: Api) -> None:
    deal = await api.deal()
    milestone_id = await deal.funded()
    problem(
        await deal.act(deal.freelancer, milestone_id, "refund-request/answer", {"accept": False}),
        409,
        "milestone.no_refund_request",
    )
    await deal.act(deal.customer, milestone_id, "request-refund", {"reason": "Too slow"})
    r = await deal.act(
        deal.freelancer,
        milestone_id,
        "refund-request/answer",
        {"accept": False, "message": "I am on it"},
    )
    assert (r.json()["state"], r.json()["refund_requested"]) == ("disputed", False)
    (declined,) = await deal.events("milestone.refund_request_declined")
    assert declined["message"] == "I am on it"
    (opened,) = await deal.events("dispute.opened")
    assert (opened["origin"], opened["reason"]) == ("refund_request_declined", "Too slow")
    assert r.json()["dispute_id"] == opened["dispute_id"]
    assert await deal.events("milestone.refund_ordered") == []


async def test_a_contract_ends_only_without_money_in_flight(api: Api) -> None:
    deal = await api.deal()
    problem(
        await api.post(deal.customer, f"/v1/contracts/{deal.contract_id}/end"),
        409,
        "contract.not_live",
    )
    milestone_id = await deal.funded()
    problem(
        await api.post(deal.freelancer, f"/v1/contracts/{deal.contract_id}/end"),
        409,
        "contract.money_in_flight",
    )
    await deal.act(deal.freelancer, milestone_id, "complete")
    await deal.act(deal.customer, milestone_id, "release")
    await api.payment_released(deal, milestone_id)
    r = await api.post(deal.freelancer, f"/v1/contracts/{deal.contract_id}/end")
    assert r.json()["state"] == "ended"
    (ended,) = await deal.events("contract.ended")
    assert ended["ended_by"]["role"] == "freelancer"
    problem(await deal.create(deal.freelancer), 409, "contract.closed")
