"""Marketplace settings (refusals, versions, contracts pinned to theirs), the list
endpoints, Idempotency-Key replays and concurrent commands."""

from __future__ import annotations

import asyncio

import pytest
from cairn_chassis.outbox import OutboxMessage
from sqlmodel import select

from .helpers import Api, Deal, User, problem, settings_body, uid

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("combination", "words"),
    [
        ({"skip_freelancer_approval": True}, "only apply when customers create"),
        ({"charge_on_freelancer_approval": True}, "only apply when customers create"),
        (
            {
                "milestone_creator": "customer",
                "skip_freelancer_approval": True,
                "charge_on_freelancer_approval": True,
            },
            "cannot be combined with skip_freelancer_approval",
        ),
    ],
)
async def test_senseless_settings_are_refused_with_a_clear_message(
    api: Api, combination: dict[str, object], words: str
) -> None:
    operator = api.user("operator", uid("mkt"))
    body = problem(await api.put_settings(operator, **combination), 422, "request.invalid")
    assert words in body["detail"]
    problem(
        await api.get(operator, f"/v1/marketplaces/{operator.marketplace}/settings"),
        404,
        "marketplace.not_found",
    )


async def test_settings_are_versioned_and_published(api: Api) -> None:
    operator = api.user("operator", uid("mkt"))
    first = await api.put_settings(operator)
    assert first.json()["version"] == 1
    assert (await api.put_settings(operator)).json()["version"] == 1  # unchanged: no version
    second = await api.put_settings(operator, platform_fee_bps=500)
    assert second.json()["version"] == 2
    current = await api.get(operator, f"/v1/marketplaces/{operator.marketplace}/settings")
    assert (current.json()["version"], current.json()["settings"]["platform_fee_bps"]) == (2, 500)
    published = await api.events(operator.marketplace, "marketplace.settings_changed")
    assert [e["version"] for e in published] == [1, 2]
    # Subscribers learn who changed them (the audit the settings topic carries).
    assert {(e["changed_by"]["user_id"], e["changed_by"]["role"]) for e in published} == {
        (operator.sub, "operator")
    }
    customer = api.user("customer", operator.marketplace)
    problem(
        await api.client.put(
            f"/v1/marketplaces/{operator.marketplace}/settings",
            json=settings_body(),
            headers=customer.headers,
        ),
        403,
        "auth.wrong_role",
    )


async def test_a_contract_keeps_the_settings_version_it_started_with(api: Api) -> None:
    old = await api.deal(milestone_creator="customer", platform_fee_bps=300)
    r = await api.put_settings(
        old.operator,
        milestone_creator="freelancer",
        platform_fee_bps=900,
        chargeback_after_release="platform",
    )
    assert r.json()["version"] == 2
    new = await api.proposal(old.operator)
    assert (old.settings_version, new.settings_version) == (1, 2)
    got = await api.get(old.customer, f"/v1/contracts/{old.contract_id}")
    assert got.json()["settings_version"] == 1

    # The old contract still has customers create tasks, at the old fee and policy...
    assert await _pay_one(old, old.customer) == ("draft", 300, "freelancer")
    (started,) = await old.events("contract.started")
    assert started["settings_version"] == 1
    # ...while the new one follows the new settings.
    problem(await new.create(new.customer), 409, "setting.customer_cannot_create")
    assert await _pay_one(new, new.freelancer) == ("approved", 900, "platform")


async def _pay_one(deal: Deal, creator: User) -> tuple[str, int, str]:
    """Create a milestone as ``creator`` and pay it: (state when created, the fee and the
    chargeback policy its charge request carries)."""
    task = (await deal.create(creator)).json()
    await deal.ready_to_pay(task["id"])
    await deal.act(deal.customer, task["id"], "pay")
    (funding,) = await deal.events("milestone.funding_requested")
    return task["state"], funding["platform_fee_bps"], funding["chargeback_after_release"]


async def test_each_party_lists_its_own_contracts_by_status_with_pagination(api: Api) -> None:
    first = await api.deal()
    operator = first.operator
    customer = first.customer
    # Two more proposals to the same customer's job, from other freelancers.
    others = []
    for _ in range(2):
        freelancer = api.user("freelancer", first.marketplace)
        r = await api.post(freelancer, f"/v1/jobs/{first.job_id}/proposals", {"cover_letter": "Me"})
        others.append(r.json()["id"])
    stranger = await api.proposal(operator)  # another customer's job
    await first.accept()
    await stranger.accept()

    async def ids(user: object, **params: object) -> list[str]:
        r = await api.get(user, "/v1/contracts", **params)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert await ids(customer, status="live") == [first.contract_id]
    assert sorted(await ids(customer, status="proposal")) == sorted(others)
    assert await ids(customer, status="ended") == []
    assert await ids(first.freelancer, status="live") == [first.contract_id]
    assert await ids(first.freelancer, status="proposal") == []
    assert sorted(await ids(operator, status="live")) == sorted(
        [first.contract_id, stranger.contract_id]
    )
    proposals = await api.get(customer, f"/v1/jobs/{first.job_id}/proposals")
    assert sorted(c["id"] for c in proposals.json()) == sorted(others)
    problem(
        await api.get(stranger.customer, f"/v1/jobs/{first.job_id}/proposals"),
        404,
        "job.not_found",
    )

    page1 = (await api.get(customer, "/v1/contracts", limit=2)).json()
    assert (len(page1["items"]), page1["next_offset"]) == (2, 2)
    page2 = (await api.get(customer, "/v1/contracts", limit=2, offset=2)).json()
    assert (len(page2["items"]), page2["next_offset"]) == (1, None)
    seen = [c["id"] for c in page1["items"] + page2["items"]]
    assert sorted(seen) == sorted([first.contract_id, *others])
    problem(await api.get(customer, "/v1/contracts", limit=0), 422)
    problem(await api.get(customer, "/v1/contracts", status="bogus"), 422)

    await api.post(first.customer, f"/v1/contracts/{first.contract_id}/end")
    assert await ids(customer, status="ended") == [first.contract_id]
    assert await ids(first.freelancer, status="ended") == [first.contract_id]


async def test_an_idempotency_key_replays_the_first_response_without_a_second_effect(
    api: Api,
) -> None:
    deal = await api.deal()
    await deal.accept()
    path = f"/v1/contracts/{deal.contract_id}/milestones"
    body = {"title": "Logo", "amount": 10_00}
    key = {"Idempotency-Key": uid("key")}
    first = await api.post(deal.freelancer, path, body, key)
    again = await api.post(deal.freelancer, path, body, key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(await deal.events("milestone.created")) == 1
    problem(
        await api.post(deal.freelancer, path, {**body, "amount": 11_00}, key),
        422,
        "idempotency.key_reused",
    )
    # Another caller's identical key is theirs alone.
    other = await api.post(deal.customer, path, body, key)
    problem(other, 409, "setting.customer_cannot_create")

    milestone_id = first.json()["id"]
    pay_key = {"Idempotency-Key": uid("pay")}
    paid = await api.post(deal.customer, f"/v1/milestones/{milestone_id}/pay", None, pay_key)
    replay = await api.post(deal.customer, f"/v1/milestones/{milestone_id}/pay", None, pay_key)
    assert (paid.status_code, replay.status_code) == (200, 200)
    assert replay.json()["funding_attempt"] == 1
    assert len(await deal.events("milestone.funding_requested")) == 1


async def test_a_double_click_pays_once(api: Api) -> None:
    deal = await api.deal()
    milestone_id = await deal.ready_to_pay()
    results = await asyncio.gather(
        *(deal.act(deal.customer, milestone_id, "pay") for _ in range(3))
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409]
    for r in results:
        if r.status_code == 409:
            problem(r, 409, "milestone.already_paid")
    (funding,) = await deal.events("milestone.funding_requested")
    assert funding["attempt"] == 1


async def test_a_token_without_an_email_is_refused_clearly_and_creates_nothing(
    api: Api,
) -> None:
    from cairn_chassis.auth import mint_token

    deal = await api.deal()
    bare = {
        role: {
            "Authorization": "Bearer "
            + mint_token(api.settings, sub=uid(role[:3]), role=role, marketplace=deal.marketplace)
        }
        for role in ("customer", "freelancer")
    }
    before = await api.fingerprint()
    r = await api.client.post("/v1/jobs", json={"title": "Logo"}, headers=bare["customer"])
    problem(r, 422, "auth.contact_required")
    r = await api.client.post(
        f"/v1/jobs/{deal.job_id}/proposals", json={"cover_letter": "Hi"}, headers=bare["freelancer"]
    )
    problem(r, 422, "auth.contact_required")
    assert await api.fingerprint() == before


async def test_every_contract_transition_is_in_its_history_with_actor_and_event(
    api: Api,
) -> None:
    # An operator's audit: who proposed, accepted, ended — and which event each published.
    deal = await api.deal()
    assert (await deal.accept()).status_code == 200
    r = await api.post(deal.freelancer, f"/v1/contracts/{deal.contract_id}/end")
    assert r.status_code == 200, r.text
    declined = await api.proposal(deal.operator)
    r = await api.post(declined.customer, f"/v1/contracts/{declined.contract_id}/decline")
    assert r.status_code == 200, r.text
    withdrawn = await api.proposal(deal.operator)
    r = await api.post(withdrawn.freelancer, f"/v1/contracts/{withdrawn.contract_id}/withdraw")
    assert r.status_code == 200, r.text

    async def history(d: Deal, who: User) -> list[tuple[str, str, str | None, str]]:
        r = await api.get(who, f"/v1/contracts/{d.contract_id}/history")
        assert r.status_code == 200, r.text
        rows = r.json()
        async with api.db.transaction() as session:
            published = set(
                (
                    await session.exec(
                        select(OutboxMessage.event_id).where(OutboxMessage.key == d.contract_id)
                    )
                ).all()
            )
        assert all(row["event_id"] in published for row in rows), "each names its event"
        return [(h["command"], h["actor_id"], h["from_state"], h["to_state"]) for h in rows]

    assert await history(deal, deal.operator) == [
        ("submit_proposal", deal.freelancer.sub, None, "proposal"),
        ("accept", deal.customer.sub, "proposal", "live"),
        ("end", deal.freelancer.sub, "live", "ended"),
    ]
    assert (await history(declined, declined.customer))[-1] == (
        "decline",
        declined.customer.sub,
        "proposal",
        "declined",
    )
    assert (await history(withdrawn, withdrawn.freelancer))[-1] == (
        "withdraw",
        withdrawn.freelancer.sub,
        "proposal",
        "withdrawn",
    )
    # Only the parties and operators see it.
    stranger = api.user("customer", deal.marketplace)
    problem(
        await api.get(stranger, f"/v1/contracts/{deal.contract_id}/history"),
        404,
        "contract.not_found",
    )
