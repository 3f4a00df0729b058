"""The guide's "Customer Creates the Milestones" flow, with none, each and the allowed
combinations of its three sub-options, through the HTTP API."""

from __future__ import annotations

import pytest

from .helpers import Api, problem

pytestmark = pytest.mark.integration

CUSTOMER_MODE = {"milestone_creator": "customer"}


async def test_customer_adds_task_freelancer_approves_customer_pays_once_live(api: Api) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    r = await deal.create(deal.customer, amount=300_00)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["state"] == "draft"
    problem(await deal.create(deal.freelancer), 409, "setting.freelancer_cannot_create")

    # Only approved tasks can be paid, and only on a live contract.
    problem(await deal.act(deal.customer, task["id"], "pay"), 409, "contract.not_live")
    r = await deal.act(deal.customer, task["id"], "send-for-approval")
    assert r.json()["state"] == "pending_approval"
    (sent,) = await deal.events("milestone.sent_for_approval")
    assert (sent["milestone_id"], sent["amount"]) == (task["id"], 300_00)

    r = await deal.approve(task["id"])
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["state"] == "approved"
    (event,) = await deal.events("milestone.approved")
    assert event["approved_version"] == approved["version"] - 1
    # Approving while a proposal never charges anyone.
    assert await deal.events("milestone.funding_requested") == []

    # A second task that the freelancer has not approved cannot be paid.
    other = (await deal.create(deal.customer)).json()
    r = await deal.accept()
    assert r.json()["state"] == "live"
    problem(await deal.act(deal.customer, other["id"], "pay"), 409, "milestone.not_approved")
    assert (await deal.milestone(other["id"]))["state"] == "draft"

    r = await deal.act(deal.customer, task["id"], "pay")
    assert r.json()["state"] == "funding"
    await api.payment_funded(deal, task["id"], attempt=1)
    problem(await deal.act(deal.customer, task["id"], "release"), 409, "milestone.not_submitted")
    assert (await deal.act(deal.freelancer, task["id"], "complete")).json()["state"] == "submitted"
    assert (await deal.act(deal.customer, task["id"], "release")).json()["state"] == "releasing"
    await api.payment_released(deal, task["id"])
    history = await deal.history(task["id"])
    assert [h["to_state"] for h in history] == [
        "draft",
        "pending_approval",
        "approved",
        "funding",
        "funded",
        "submitted",
        "releasing",
        "released",
    ]
    (funding,) = await deal.events("milestone.funding_requested")
    assert (funding["trigger"], funding["attempt"], funding["amount"]) == ("customer", 1, 300_00)


async def test_changes_requested_go_to_the_thread_and_the_edited_task_is_approved(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    task = (await deal.create(deal.customer)).json()
    await deal.act(deal.customer, task["id"], "send-for-approval")
    problem(
        await deal.act(deal.customer, task["id"], "request-changes", {"message": "x"}),
        403,
        "auth.wrong_role",
    )
    r = await deal.act(
        deal.freelancer, task["id"], "request-changes", {"message": "Please split it in two"}
    )
    assert r.json()["state"] == "changes_requested"
    thread = await api.get(deal.customer, f"/v1/contracts/{deal.contract_id}/messages")
    (message,) = thread.json()["items"]
    assert message["body"] == "Please split it in two"
    assert message["milestone_id"] == task["id"]
    (changes,) = await deal.events("milestone.changes_requested")
    assert changes["message"] == "Please split it in two"
    assert await deal.events("message.posted") == []  # one email, not two

    version = r.json()["version"]
    r = await deal.edit(task["id"], {"amount": 250_00, "title": "Part one"}, version)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["amount"]) == ("changes_requested", 250_00)
    (edited,) = await deal.events("milestone.edited")
    assert (edited["previous_amount"], edited["amount"]) == (50_000, 250_00)
    await deal.act(deal.customer, task["id"], "send-for-approval")
    assert (await deal.approve(task["id"])).json()["state"] == "approved"


async def test_an_approval_of_a_version_the_customer_has_since_edited_is_refused(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    task = (await deal.create(deal.customer)).json()
    seen = (await deal.act(deal.customer, task["id"], "send-for-approval")).json()
    r = await deal.edit(task["id"], {"amount": 1_00}, seen["version"])
    assert r.json()["state"] == "pending_approval"
    body = problem(
        await deal.approve(task["id"], version=seen["version"]), 409, "milestone.stale_version"
    )
    assert str(r.json()["version"]) in body["detail"]
    after = await deal.milestone(task["id"])
    assert (after["state"], after["version"]) == ("pending_approval", r.json()["version"])
    assert await deal.events("milestone.approved") == []
    assert (await deal.approve(task["id"], version=after["version"])).status_code == 200


async def test_edits_need_the_current_version_and_an_edited_approved_task_needs_approval_again(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    task_id = await deal.ready_to_pay()
    m = await deal.milestone(task_id)
    problem(await deal.edit(task_id, {"title": "New"}, None), 428, "milestone.version_required")
    problem(
        await deal.edit(task_id, {"title": "New"}, m["version"] - 1),
        412,
        "milestone.stale_version",
    )
    problem(await deal.edit(task_id, {}, m["version"]), 422, "milestone.nothing_to_change")
    assert (await deal.milestone(task_id))["version"] == m["version"]

    r = await deal.edit(task_id, {"title": "New"}, m["version"])
    assert (r.json()["state"], r.json()["title"]) == ("pending_approval", "New")
    assert r.headers["ETag"] == f'"{r.json()["version"]}"'
    problem(await deal.act(deal.customer, task_id, "pay"), 409, "milestone.not_approved")


async def test_tasks_are_deleted_before_approval_but_not_after_and_never_once_paid(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    draft = (await deal.create(deal.customer)).json()
    problem(await deal.delete(draft["id"], by=deal.freelancer), 403, "auth.wrong_role")
    r = await deal.delete(draft["id"])
    assert r.json()["state"] == "deleted"
    (deleted,) = await deal.events("milestone.deleted")
    assert deleted["milestone_id"] == draft["id"]
    problem(
        await deal.act(deal.customer, draft["id"], "send-for-approval"), 409, "milestone.deleted"
    )

    approved = await deal.ready_to_pay()
    problem(await deal.delete(approved), 409, "milestone.approved_by_freelancer")
    paid = await deal.funded(approved)
    problem(await deal.delete(paid), 409, "milestone.already_paid")
    m = await deal.milestone(paid)
    problem(await deal.edit(paid, {"amount": 1}, m["version"]), 409, "milestone.already_paid")
    after = await deal.milestone(paid)
    assert (after["state"], after["amount"], after["version"]) == ("funded", 50_000, m["version"])


async def test_skip_approval_customer_pays_straight_away_and_releases_without_completion(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE, skip_freelancer_approval=True)
    task = (await deal.create(deal.customer)).json()
    assert task["state"] == "approved"
    problem(
        await deal.act(deal.customer, task["id"], "send-for-approval"),
        409,
        "setting.no_freelancer_approval",
    )
    problem(await deal.approve(task["id"]), 409, "setting.no_freelancer_approval")
    problem(await deal.act(deal.customer, task["id"], "pay"), 409, "contract.not_live")
    # Nobody agreed to it yet, so it may be edited (stays approved) and deleted.
    r = await deal.edit(task["id"], {"amount": 75_00}, task["version"])
    assert r.json()["state"] == "approved"
    spare = (await deal.create(deal.customer)).json()
    assert (await deal.delete(spare["id"])).json()["state"] == "deleted"

    await deal.accept()
    await deal.funded(task["id"])
    r = await deal.act(deal.customer, task["id"], "release")
    assert r.json()["state"] == "releasing"
    (release,) = await deal.events("milestone.release_requested")
    assert (release["amount"], release["trigger"]) == (75_00, "customer")
    assert [h["command"] for h in await deal.history(task["id"])] == [
        "create",
        "edit",
        "pay",
        "payment_succeeded",
        "release",
    ]


async def test_delete_until_paid_lets_the_customer_delete_an_approved_task(api: Api) -> None:
    deal = await api.deal(**CUSTOMER_MODE, allow_delete_until_paid=True)
    approved = await deal.ready_to_pay()
    r = await deal.delete(approved)
    assert r.json()["state"] == "deleted"
    problem(await deal.act(deal.customer, approved, "pay"), 409, "milestone.deleted")
    paid = await deal.funded()
    problem(await deal.delete(paid), 409, "milestone.already_paid")
    assert (await deal.milestone(paid))["state"] == "funded"


async def test_charge_on_approval_charges_only_once_live_and_every_approved_task_at_start(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE, charge_on_freelancer_approval=True, platform_fee_bps=250)
    first = (await deal.create(deal.customer, amount=100_00)).json()
    second = (await deal.create(deal.customer, amount=200_00)).json()
    draft = (await deal.create(deal.customer, amount=300_00)).json()
    for task in (first, second):
        await deal.act(deal.customer, task["id"], "send-for-approval")
        r = await deal.approve(task["id"])
        assert r.json()["state"] == "approved"  # a proposal: never charged
    assert await deal.events("milestone.funding_requested") == []

    await deal.accept()
    charges = await deal.events("milestone.funding_requested")
    assert sorted((c["milestone_id"], c["amount"]) for c in charges) == sorted(
        [(first["id"], 100_00), (second["id"], 200_00)]
    )
    assert {(c["trigger"], c["attempt"], c["platform_fee_bps"]) for c in charges} == {
        ("contract_started", 1, 250)
    }
    assert (await deal.milestone(first["id"]))["state"] == "funding"
    assert (await deal.milestone(draft["id"]))["state"] == "draft"
    types = [e["type"] for e in await deal.events()]
    assert types.index("contract.started") < types.index("milestone.funding_requested")

    await deal.act(deal.customer, draft["id"], "send-for-approval")
    r = await deal.approve(draft["id"])
    assert (r.json()["state"], r.json()["funding_attempt"]) == ("funding", 1)
    last = (await deal.events("milestone.funding_requested"))[-1]
    assert (last["milestone_id"], last["trigger"], last["amount"]) == (
        draft["id"],
        "freelancer_approval",
        300_00,
    )
    # Already being charged: the customer cannot pay it a second time.
    problem(await deal.act(deal.customer, draft["id"], "pay"), 409, "milestone.already_paid")
    history = await deal.history(first["id"])
    assert [(h["command"], h["to_state"], h["actor_role"]) for h in history][-1] == (
        "pay",
        "funding",
        "customer",
    )


async def test_skip_approval_with_delete_until_paid(api: Api) -> None:
    deal = await api.deal(
        **CUSTOMER_MODE, skip_freelancer_approval=True, allow_delete_until_paid=True
    )
    await deal.accept()
    keep = (await deal.create(deal.customer)).json()
    drop = (await deal.create(deal.customer)).json()
    assert (drop["state"], keep["state"]) == ("approved", "approved")
    assert (await deal.delete(drop["id"])).json()["state"] == "deleted"
    await deal.funded(keep["id"])
    problem(await deal.delete(keep["id"]), 409, "milestone.already_paid")
    assert (await deal.act(deal.customer, keep["id"], "release")).json()["state"] == "releasing"


async def test_delete_until_paid_with_charge_on_approval(api: Api) -> None:
    deal = await api.deal(
        **CUSTOMER_MODE, allow_delete_until_paid=True, charge_on_freelancer_approval=True
    )
    task = (await deal.create(deal.customer)).json()
    await deal.act(deal.customer, task["id"], "send-for-approval")
    await deal.approve(task["id"])
    # Approved on a proposal (not charged yet): still deletable.
    assert (await deal.delete(task["id"])).json()["state"] == "deleted"

    other = (await deal.create(deal.customer)).json()
    await deal.accept()
    await deal.act(deal.customer, other["id"], "send-for-approval")
    assert (await deal.approve(other["id"])).json()["state"] == "funding"
    problem(await deal.delete(other["id"]), 409, "milestone.already_paid")
    charges = await deal.events("milestone.funding_requested")
    assert [(c["milestone_id"], c["trigger"]) for c in charges] == [
        (other["id"], "freelancer_approval")
    ]


async def test_charge_on_approval_after_a_declined_card_charges_the_edited_amount_once_reapproved(
    api: Api,
) -> None:
    deal = await api.deal(**CUSTOMER_MODE, charge_on_freelancer_approval=True)
    await deal.accept()
    task = (await deal.create(deal.customer, amount=100_00)).json()
    await deal.act(deal.customer, task["id"], "send-for-approval")
    assert (await deal.approve(task["id"])).json()["state"] == "funding"  # charged at once
    await api.payment_failed(deal, task["id"], attempt=1, reason="Your card was declined.")

    # Unpaid again, so the customer may change the price; the freelancer must agree to it
    # before anything is charged.
    m = await deal.milestone(task["id"])
    r = await deal.edit(task["id"], {"amount": 496_02}, m["version"])
    assert (r.json()["state"], r.json()["amount"]) == ("pending_approval", 496_02)
    assert [c["amount"] for c in await deal.events("milestone.funding_requested")] == [100_00]

    r = await deal.approve(task["id"])
    assert (r.json()["state"], r.json()["funding_attempt"]) == ("funding", 2)
    charges = await deal.events("milestone.funding_requested")
    assert [(c["amount"], c["attempt"], c["trigger"]) for c in charges] == [
        (100_00, 1, "freelancer_approval"),
        (496_02, 2, "freelancer_approval"),
    ]
