"""What a front end builds on: one milestone with its ETag, the actions each user may take,
and the contract's live updates (Server-Sent Events) — pushed from the service's own
commits, resumable with Last-Event-ID, only for those who may see the contract."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cairn_devstack.sse import ServerEvent, aevents
from fastapi import FastAPI

from .helpers import Api, Deal, User, problem

pytestmark = pytest.mark.integration
CUSTOMER_MODE = {"milestone_creator": "customer"}


@pytest.fixture(scope="module")
async def server(app: FastAPI) -> AsyncIterator[str]:
    """The API behind a real HTTP server (a stream never ends, so not in-process ASGI)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve(sockets=[sock]))
    while not running.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    running.should_exit = True
    await task


class Stream:
    """One client's subscription to a contract's live updates."""

    def __init__(self, events: AsyncIterator[ServerEvent]) -> None:
        self._events = events

    async def next(self, timeout: float = 10.0) -> ServerEvent:
        return await asyncio.wait_for(anext(self._events), timeout)


async def follow(
    base: str, deal: Deal, user: User, last_event_id: str | None = None
) -> AsyncIterator[Stream | httpx.Response]:
    headers = dict(user.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(base_url=base, timeout=20) as http,
        http.stream("GET", f"/v1/contracts/{deal.contract_id}/events", headers=headers) as r,
    ):
        if r.status_code != 200:
            await r.aread()
            yield r
            return
        assert r.headers["content-type"].startswith("text/event-stream")
        yield Stream(aevents(r.aiter_lines()))


async def test_a_milestone_is_one_resource_with_its_version_as_etag(api: Api) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    created = (await deal.create(deal.customer)).json()
    r = await api.get(deal.customer, f"/v1/milestones/{created['id']}")
    assert r.status_code == 200
    assert r.headers["etag"] == f'"{created["version"]}"'
    assert r.json()["actions"] == ["edit", "delete", "send_for_approval"]
    # The ETag is what an edit sends back as If-Match.
    edited = await deal.edit(created["id"], {"amount": 123_00}, version=created["version"])
    assert edited.status_code == 200
    assert (
        await deal.edit(created["id"], {"amount": 1_00}, version=created["version"])
    ).status_code == 412
    stranger = api.user("customer", deal.marketplace)
    problem(await api.get(stranger, f"/v1/milestones/{created['id']}"), 404, "milestone.not_found")


async def test_every_contract_and_milestone_carries_the_callers_actions(api: Api) -> None:
    deal = await api.deal(**CUSTOMER_MODE)
    as_customer = (await api.get(deal.customer, f"/v1/contracts/{deal.contract_id}")).json()
    as_freelancer = (await api.get(deal.freelancer, f"/v1/contracts/{deal.contract_id}")).json()
    # "Add Task" is shown exactly to whom `add_milestone` is listed: customers here.
    assert as_customer["actions"] == ["accept", "decline", "add_milestone"]
    assert as_freelancer["actions"] == ["withdraw"]
    draft = (await deal.create(deal.customer)).json()
    assert draft["actions"] == ["edit", "delete", "send_for_approval"]
    listed = (await api.get(deal.freelancer, "/v1/contracts")).json()["items"]
    assert [c["actions"] for c in listed if c["id"] == deal.contract_id] == [["withdraw"]]
    # What is listed is allowed: sending it for approval works, and then the freelancer
    # is offered exactly approve and request_changes.
    sent = await deal.act(deal.customer, draft["id"], "send-for-approval")
    view = (await api.get(deal.freelancer, f"/v1/milestones/{draft['id']}")).json()
    assert (sent.status_code, view["actions"]) == (200, ["approve", "request_changes"])


@pytest.fixture
def no_polling(app: FastAPI) -> Iterator[None]:
    """Streams that only a commit's notification can wake (PostgreSQL's LISTEN)."""
    feed = app.state.change_feed
    saved = feed._poll_s, feed._listening_poll_s
    feed._poll_s = feed._listening_poll_s = 60.0
    yield
    feed._poll_s, feed._listening_poll_s = saved


@pytest.mark.usefixtures("no_polling")
async def test_parties_get_each_change_pushed_and_resume_where_they_left(
    api: Api, server: str
) -> None:
    deal = await api.deal()
    await deal.accept()
    stream_of: Any = follow(server, deal, deal.customer)
    stream = await anext(stream_of)
    snapshot = await stream.next()
    assert (snapshot.event, snapshot.json()["state"]) == ("snapshot", "live")
    assert snapshot.json()["actions"] == ["end"]

    milestone_id = (await deal.create()).json()["id"]
    created = await stream.next()
    assert created.event == "milestone"
    assert created.json()["change"]["command"] == "create"
    assert created.json()["milestone"]["actions"] == ["pay"]  # the customer's

    await deal.act(deal.customer, milestone_id, "pay")
    await api.payment_funded(deal, milestone_id, attempt=1)  # the consumer's commit
    paid, funded = await stream.next(), await stream.next()
    assert [paid.json()["change"]["to_state"], funded.json()["change"]["to_state"]] == [
        "funding",
        "funded",
    ]
    await stream_of.aclose()

    # Reconnecting with the last id it got, a client gets what it missed, and no snapshot.
    await deal.act(deal.freelancer, milestone_id, "complete")
    resumed_of: Any = follow(server, deal, deal.freelancer, last_event_id=paid.id)
    resumed = await anext(resumed_of)
    missed = [await resumed.next(), await resumed.next()]
    assert [(e.event, e.json()["change"]["to_state"]) for e in missed] == [
        ("milestone", "funded"),
        ("milestone", "submitted"),
    ]
    assert missed[-1].json()["milestone"]["actions"] == ["refund"]  # the freelancer's
    await resumed_of.aclose()


async def test_a_contract_change_and_what_it_sets_off_arrive_in_order(
    api: Api, server: str
) -> None:
    deal = await api.deal(milestone_creator="customer", charge_on_freelancer_approval=True)
    task = await deal.ready_to_pay()  # approved while a proposal; accepted = charged
    contract = (await api.get(deal.customer, f"/v1/contracts/{deal.contract_id}")).json()
    assert contract["state"] == "live"
    stream_of: Any = follow(server, deal, deal.operator, last_event_id="0.0")
    stream = await anext(stream_of)
    seen = [await stream.next() for _ in range(6)]
    assert [(e.event, e.json()["change"]["command"]) for e in seen] == [
        ("contract", "submit_proposal"),
        ("milestone", "create"),
        ("milestone", "send_for_approval"),
        ("milestone", "approve"),
        ("contract", "accept"),
        ("milestone", "pay"),
    ]
    assert seen[-1].json()["milestone"]["id"] == task
    await stream_of.aclose()


async def test_only_who_may_see_the_contract_may_follow_it(api: Api, server: str) -> None:
    deal = await api.deal()
    stranger = api.user("customer", deal.marketplace)
    answer_of: Any = follow(server, deal, stranger)
    refused = await anext(answer_of)
    assert isinstance(refused, httpx.Response)
    problem(refused, 404, "contract.not_found")
    await answer_of.aclose()
