"""Every mutating endpoint, times every way of being the wrong caller: refused with the right
status (401 token problems, 403 wrong role, 404 — never 403 — for someone else's or another
marketplace's resources, so nothing leaks), and nothing changes. Then the right caller
succeeds, proving the refusals were about the caller and not the milestone's state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cairn_chassis.auth import mint_token

from .helpers import Api, Deal, Role, User, settings_body, uid

pytestmark = pytest.mark.integration

Target = dict[str, str]


@dataclass(frozen=True)
class Command:
    """One mutating endpoint, how to bring a fresh deal to where it is allowed, and who
    may call it."""

    name: str
    method: str
    path: str  # formatted with the target
    actor: Role
    prepare: Callable[[Api], Awaitable[tuple[Deal, Target]]]
    body: Callable[[Target], dict[str, Any] | None] = lambda _t: None
    headers: Callable[[Target], dict[str, str]] = lambda _t: {}
    # Status for the other roles of the same marketplace (default 403).
    other_roles: tuple[tuple[Role, int], ...] = ()
    scoped: bool = True  # has a target another party could try to reach
    newcomer: bool = False  # the right caller is someone new (e.g. another freelancer)


async def _proposal(api: Api, **settings: Any) -> tuple[Deal, Target]:
    deal = await api.deal(**settings)
    return deal, {"contract": deal.contract_id, "job": deal.job_id, "mkt": deal.marketplace}


async def _live(api: Api, **settings: Any) -> tuple[Deal, Target]:
    deal, target = await _proposal(api, **settings)
    await deal.accept()
    return deal, target


def _with(state: str, **settings: Any) -> Callable[[Api], Awaitable[tuple[Deal, Target]]]:
    """A deal with one milestone in ``state``."""

    async def prepare(api: Api) -> tuple[Deal, Target]:
        deal, target = await _proposal(api, **settings)
        if state in ("draft", "pending_approval"):
            mid = (await deal.create(deal.customer)).json()["id"]
            if state == "pending_approval":
                await deal.act(deal.customer, mid, "send-for-approval")
        elif state == "approved":
            mid = await deal.ready_to_pay()
        elif state == "funded":
            mid = await deal.funded()
        elif state == "submitted":
            mid = await deal.submitted()
        elif state == "refund_requested":
            mid = await deal.funded()
            await deal.act(deal.customer, mid, "request-refund", {"reason": "Please"})
        else:
            assert state == "disputed"
            mid, dispute_id = await deal.disputed()
            target["dispute"] = dispute_id
        m = await deal.milestone(mid)
        target.update(milestone=mid, version=str(m["version"]))
        return deal, target

    return prepare


CUSTOMER_MODE = {"milestone_creator": "customer"}

COMMANDS = [
    Command(
        "put settings",
        "PUT",
        "/v1/marketplaces/{mkt}/settings",
        "operator",
        _proposal,
        body=lambda _t: settings_body(platform_fee_bps=1234),
    ),
    Command(
        "post job",
        "POST",
        "/v1/jobs",
        "customer",
        _proposal,
        body=lambda _t: {"title": "Another job"},
        scoped=False,
    ),
    Command(
        "send proposal",
        "POST",
        "/v1/jobs/{job}/proposals",
        "freelancer",
        _proposal,
        body=lambda _t: {"cover_letter": "Me too"},
        newcomer=True,
    ),
    Command("accept", "POST", "/v1/contracts/{contract}/accept", "customer", _proposal),
    Command("decline", "POST", "/v1/contracts/{contract}/decline", "customer", _proposal),
    Command("withdraw", "POST", "/v1/contracts/{contract}/withdraw", "freelancer", _proposal),
    Command(
        "end",
        "POST",
        "/v1/contracts/{contract}/end",
        "customer",
        _live,
        other_roles=(("freelancer", 200),),
    ),
    Command(
        "post message",
        "POST",
        "/v1/contracts/{contract}/messages",
        "customer",
        _live,
        body=lambda _t: {"body": "Hello"},
        other_roles=(("freelancer", 201),),
    ),
    Command(
        "create milestone",
        "POST",
        "/v1/contracts/{contract}/milestones",
        "freelancer",
        _live,
        body=lambda _t: {"title": "More", "amount": 100},
        other_roles=(("customer", 409),),
    ),
    Command(
        "edit milestone",
        "PATCH",
        "/v1/milestones/{milestone}",
        "freelancer",
        _with("approved"),
        body=lambda _t: {"amount": 99},
        headers=lambda t: {"If-Match": t["version"]},
    ),
    Command(
        "delete milestone", "DELETE", "/v1/milestones/{milestone}", "freelancer", _with("approved")
    ),
    Command(
        "send for approval",
        "POST",
        "/v1/milestones/{milestone}/send-for-approval",
        "customer",
        _with("draft", **CUSTOMER_MODE),
    ),
    Command(
        "approve",
        "POST",
        "/v1/milestones/{milestone}/approve",
        "freelancer",
        _with("pending_approval", **CUSTOMER_MODE),
        body=lambda t: {"version": int(t["version"])},
    ),
    Command(
        "request changes",
        "POST",
        "/v1/milestones/{milestone}/request-changes",
        "freelancer",
        _with("pending_approval", **CUSTOMER_MODE),
        body=lambda _t: {"message": "Smaller please"},
    ),
    Command("pay", "POST", "/v1/milestones/{milestone}/pay", "customer", _with("approved")),
    Command(
        "complete", "POST", "/v1/milestones/{milestone}/complete", "freelancer", _with("funded")
    ),
    Command(
        "release", "POST", "/v1/milestones/{milestone}/release", "customer", _with("submitted")
    ),
    Command(
        "dispute",
        "POST",
        "/v1/milestones/{milestone}/dispute",
        "customer",
        _with("submitted"),
        body=lambda _t: {"reason": "Not done"},
    ),
    Command(
        "request refund",
        "POST",
        "/v1/milestones/{milestone}/request-refund",
        "customer",
        _with("funded"),
        body=lambda _t: {"reason": "Changed plans"},
    ),
    Command("refund", "POST", "/v1/milestones/{milestone}/refund", "freelancer", _with("funded")),
    Command(
        "answer refund request",
        "POST",
        "/v1/milestones/{milestone}/refund-request/answer",
        "freelancer",
        _with("refund_requested"),
        body=lambda _t: {"accept": True},
    ),
    Command(
        "resolve dispute",
        "POST",
        "/v1/disputes/{dispute}/resolve",
        "operator",
        _with("disputed"),
        body=lambda _t: {"outcome": "refund", "note": "Refunded"},
    ),
]


def _party(deal: Deal, role: Role) -> User:
    return {"customer": deal.customer, "freelancer": deal.freelancer}.get(role, deal.operator)


async def _call(
    api: Api, command: Command, target: Target, headers: dict[str, str]
) -> httpx.Response:
    return await api.client.request(
        command.method,
        command.path.format(**target),
        json=command.body(target),
        headers={**command.headers(target), **headers},
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
async def test_wrong_callers_are_refused_and_change_nothing(api: Api, command: Command) -> None:
    deal, target = await command.prepare(api)
    right = _party(deal, command.actor)
    if command.newcomer:
        right = api.user(command.actor, deal.marketplace)
    other_secret = api.settings.model_copy(update={"jwt_secret": "x" * 40})

    def token(settings: Any = api.settings, ttl_s: int = 3600, **claims: Any) -> dict[str, str]:
        c = {"sub": right.sub, "role": right.role, "marketplace": right.marketplace}
        c.update(claims)
        t = mint_token(settings, email=f"{c['sub']}@example.test", name="N", ttl_s=ttl_s, **c)
        return {"Authorization": f"Bearer {t}"}

    attempts: list[tuple[str, dict[str, str], int, str | None]] = [
        ("no token", {}, 401, "auth.unauthenticated"),
        ("not a bearer token", {"Authorization": "Basic dXNlcjpwdw=="}, 401, None),
        ("expired token", token(ttl_s=-60), 401, "auth.token_expired"),
        ("bad signature", token(settings=other_secret), 401, "auth.invalid_token"),
        ("unknown role", token(role="admin"), 401, "auth.invalid_token"),
    ]
    other_roles = dict(command.other_roles)
    for role in ("customer", "freelancer", "operator"):
        if role != command.actor and other_roles.get(role, 403) == 403:
            attempts.append((f"wrong role {role}", _party(deal, role).headers, 403, None))
        elif role != command.actor and other_roles[role] >= 400:
            attempts.append(
                (f"wrong role {role}", _party(deal, role).headers, other_roles[role], None)
            )
    if command.scoped:
        stranger = api.user(command.actor, deal.marketplace)
        if command.actor != "operator" and command.name != "send proposal":
            attempts.append(("wrong party", stranger.headers, 404, None))
        attempts.append(("other marketplace", token(marketplace=uid("mkt")), 404, None))

    before = await api.fingerprint()
    for what, headers, status, code in attempts:
        r = await _call(api, command, target, headers)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), what
        if code:
            assert r.json()["code"] == code, (what, r.json())
        if status == 404:
            assert r.json()["code"].endswith("not_found"), (what, r.json())
        assert await api.fingerprint() == before, f"{what} changed something"

    r = await _call(api, command, target, right.headers)
    assert r.status_code in (200, 201), r.text
    assert await api.fingerprint() != before


async def test_reading_someone_elses_contract_is_404_like_one_that_does_not_exist(
    api: Api,
) -> None:
    deal, target = await _with("approved")(api)
    outsiders = [
        api.user("customer", deal.marketplace),
        api.user("freelancer", deal.marketplace),
        api.user("operator", uid("mkt")),
        api.user("customer", uid("mkt"), sub=deal.customer.sub),
    ]
    paths = [
        f"/v1/contracts/{deal.contract_id}",
        f"/v1/contracts/{deal.contract_id}/messages",
        f"/v1/milestones/{target['milestone']}/history",
    ]
    for user in outsiders:
        for path in paths:
            theirs = await api.get(user, path)
            missing = await api.get(
                user,
                path.replace(deal.contract_id, "ct_missing").replace(
                    target["milestone"], "ms_missing"
                ),
            )
            assert theirs.status_code == missing.status_code == 404, (user.sub, path)
            assert theirs.json()["code"] == missing.json()["code"]
        listed = await api.get(user, "/v1/contracts")
        assert deal.contract_id not in [c["id"] for c in listed.json()["items"]]
    for user in (deal.customer, deal.freelancer, deal.operator):
        for path in paths:
            assert (await api.get(user, path)).status_code == 200, (user.role, path)
