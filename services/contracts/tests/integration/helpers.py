"""Driving the contracts API as the marketplace's users would, and reading what it wrote.

``Api.deal(...)`` sets up a fresh marketplace (its own settings), a customer's job and a
freelancer's proposal; ``Deal`` then speaks for each party over HTTP. Payment outcomes go
through the handlers of ``build_router(db)``: the code path Kafka drives in production.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from cairn_chassis.auth import mint_token
from cairn_chassis.db import Database
from cairn_chassis.outbox import OutboxMessage
from cairn_contracts.adapters.tables import HistoryRow, MilestoneRow
from cairn_contracts.config import Settings
from cairn_contracts.entrypoints.consumers import build_router
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    PaymentActionRequired,
    PaymentChargebackOpened,
    PaymentFailed,
    PaymentFunded,
    PaymentRefunded,
    PaymentReleased,
    PaymentSplitSettled,
)
from sqlalchemy import func
from sqlmodel import col, select

JWT_SECRET = "contracts-test-secret-at-least-32-bytes-long"
Role = Literal["customer", "freelancer", "operator"]


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def branding(name: str = "Acme Talent") -> dict[str, Any]:
    return {
        "display_name": name,
        "from_address": "hello@acme.test",
        "support_address": "support@acme.test",
    }


def settings_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "currency": "EUR",
        "platform_fee_bps": 1000,
        "branding": branding(),
    }
    body.update(overrides)
    return body


@dataclass
class User:
    """A signed-in user of one marketplace."""

    sub: str
    role: Role
    marketplace: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Deal:
    """A marketplace, a customer's job and a freelancer's proposal on it (the contract)."""

    api: Api
    marketplace: str
    customer: User
    freelancer: User
    operator: User
    job_id: str
    contract_id: str
    settings_version: int
    creator_role: Role = "freelancer"
    milestones: list[str] = field(default_factory=list)

    def of(self, role: Role) -> User:
        return {"customer": self.customer, "freelancer": self.freelancer}.get(role, self.operator)

    @property
    def creator(self) -> User:
        """Whoever creates milestones on this marketplace."""
        return self.of(self.creator_role)

    async def accept(self) -> httpx.Response:
        return await self.api.post(self.customer, f"/v1/contracts/{self.contract_id}/accept")

    async def create(
        self, by: User | None = None, *, amount: int = 50_000, title: str = "Wireframes"
    ) -> httpx.Response:
        r = await self.api.post(
            by or self.creator,
            f"/v1/contracts/{self.contract_id}/milestones",
            {"title": title, "description": "Three screens", "amount": amount},
        )
        if r.status_code == 201:
            self.milestones.append(r.json()["id"])
        return r

    async def milestone(self, milestone_id: str, by: User | None = None) -> dict[str, Any]:
        r = await self.api.get(by or self.customer, f"/v1/contracts/{self.contract_id}")
        assert r.status_code == 200, r.text
        return next(m for m in r.json()["milestones"] if m["id"] == milestone_id)

    async def act(
        self, by: User, milestone_id: str, action: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.api.post(by, f"/v1/milestones/{milestone_id}/{action}", body)

    async def approve(self, milestone_id: str, version: int | None = None) -> httpx.Response:
        if version is None:
            version = (await self.milestone(milestone_id))["version"]
        return await self.act(self.freelancer, milestone_id, "approve", {"version": version})

    async def edit(
        self, milestone_id: str, changes: dict[str, Any], version: int | None
    ) -> httpx.Response:
        headers = dict(self.creator.headers)
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        return await self.api.client.patch(
            f"/v1/milestones/{milestone_id}", json=changes, headers=headers
        )

    async def delete(self, milestone_id: str, by: User | None = None) -> httpx.Response:
        return await self.api.client.delete(
            f"/v1/milestones/{milestone_id}", headers=(by or self.creator).headers
        )

    async def history(self, milestone_id: str) -> list[dict[str, Any]]:
        r = await self.api.get(self.customer, f"/v1/milestones/{milestone_id}/history")
        assert r.status_code == 200, r.text
        rows: list[dict[str, Any]] = r.json()
        return rows

    async def ready_to_pay(self, milestone_id: str | None = None) -> str:
        """A live contract with an approved milestone (created and approved as needed)."""
        if milestone_id is None:
            r = await self.create()
            assert r.status_code == 201, r.text
            milestone_id = r.json()["id"]
        m = await self.milestone(milestone_id)
        if m["state"] == "draft":
            r = await self.act(self.customer, milestone_id, "send-for-approval")
            assert r.status_code == 200, r.text
            r = await self.approve(milestone_id)
            assert r.status_code == 200, r.text
        contract = await self.api.get(self.customer, f"/v1/contracts/{self.contract_id}")
        if contract.json()["state"] == "proposal":
            assert (await self.accept()).status_code == 200
        return milestone_id

    async def funded(self, milestone_id: str | None = None) -> str:
        """A milestone paid for and held in escrow."""
        milestone_id = await self.ready_to_pay(milestone_id)
        m = await self.milestone(milestone_id)
        if m["state"] == "approved":
            r = await self.act(self.customer, milestone_id, "pay")
            assert r.status_code == 200, r.text
            m = r.json()
        assert m["state"] == "funding", m
        await self.api.payment_funded(self, milestone_id, attempt=m["funding_attempt"])
        assert (await self.milestone(milestone_id))["state"] == "funded"
        return milestone_id

    async def submitted(self, milestone_id: str | None = None) -> str:
        milestone_id = await self.funded(milestone_id)
        r = await self.act(self.freelancer, milestone_id, "complete")
        assert r.status_code == 200, r.text
        return milestone_id

    async def disputed(self, milestone_id: str | None = None) -> tuple[str, str]:
        milestone_id = await self.submitted(milestone_id)
        r = await self.act(self.customer, milestone_id, "dispute", {"reason": "Not delivered"})
        assert r.status_code == 200, r.text
        return milestone_id, r.json()["dispute_id"]

    async def events(self, *types: str) -> list[dict[str, Any]]:
        return await self.api.events(self.contract_id, *types)


class Api:
    """The contracts API of one test session, plus the database it writes."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, db: Database) -> None:
        self.client = client
        self.settings = settings
        self.db = db
        self.router = build_router(db)

    # --- tokens -----------------------------------------------------------------------------

    def user(
        self, role: Role, marketplace: str, sub: str | None = None, *, ttl_s: int = 3600
    ) -> User:
        sub = sub or uid(role[:3])
        token = mint_token(
            self.settings,
            sub=sub,
            role=role,
            marketplace=marketplace,
            email=f"{sub}@example.test",
            name=f"{role.title()} {sub[-4:]}",
            ttl_s=ttl_s,
        )
        return User(sub=sub, role=role, marketplace=marketplace, token=token)

    # --- HTTP ---------------------------------------------------------------------------------

    async def post(
        self,
        by: User | None,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        h = dict(by.headers) if by else {}
        h.update(headers or {})
        return await self.client.post(path, json=body, headers=h)

    async def get(self, by: User | None, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=by.headers if by else {})

    async def put_settings(self, operator: User, **overrides: Any) -> httpx.Response:
        return await self.client.put(
            f"/v1/marketplaces/{operator.marketplace}/settings",
            json=settings_body(**overrides),
            headers=operator.headers,
        )

    async def deal(self, marketplace: str | None = None, **overrides: Any) -> Deal:
        """A fresh marketplace with these settings, a job and a proposal on it."""
        marketplace = marketplace or uid("mkt")
        operator = self.user("operator", marketplace)
        r = await self.put_settings(operator, **overrides)
        assert r.status_code == 200, r.text
        return await self.proposal(operator, version=r.json()["version"])

    async def proposal(self, operator: User, *, version: int | None = None) -> Deal:
        """A new customer's job and a new freelancer's proposal in ``operator``'s market."""
        marketplace = operator.marketplace
        customer = self.user("customer", marketplace)
        freelancer = self.user("freelancer", marketplace)
        r = await self.post(customer, "/v1/jobs", {"title": "Logo", "description": "A logo"})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        r = await self.post(freelancer, f"/v1/jobs/{job_id}/proposals", {"cover_letter": "Hire me"})
        assert r.status_code == 201, r.text
        contract = r.json()
        deal = Deal(
            api=self,
            marketplace=marketplace,
            customer=customer,
            freelancer=freelancer,
            operator=operator,
            job_id=job_id,
            contract_id=contract["id"],
            settings_version=contract["settings_version"],
        )
        s = await self.get(operator, f"/v1/marketplaces/{marketplace}/settings")
        creator = s.json()["settings"]["milestone_creator"]
        deal.creator_role = "customer" if creator == "customer" else "freelancer"
        assert version is None or deal.settings_version == version
        return deal

    # --- payments outcomes (what Kafka would deliver) ---------------------------------------

    async def deliver(self, event: Event, *, event_id: str | None = None) -> str:
        """Hand ``event`` to the contracts consumer exactly as the Kafka dispatcher does."""
        envelope = Envelope(
            id=event_id or str(uuid.uuid4()),
            type=event.event_type,
            source="/cairn/payments",
            time=datetime.now(UTC),
            subject=getattr(event, "milestone_id", None),
            event=event,
        )
        await self.router.handlers[event.event_type](envelope)
        return envelope.id

    async def _money(self, deal: Deal, milestone_id: str) -> dict[str, Any]:
        async with self.db.transaction() as session:
            m = (
                await session.exec(select(MilestoneRow).where(MilestoneRow.id == milestone_id))
            ).one()
        return {
            "marketplace_id": deal.marketplace,
            "contract_id": deal.contract_id,
            "milestone_id": milestone_id,
            "amount": m.amount,
            "currency": m.currency,
        }

    async def payment_funded(self, deal: Deal, milestone_id: str, *, attempt: int) -> str:
        base = await self._money(deal, milestone_id)
        return await self.deliver(
            PaymentFunded(**base, attempt=attempt, payment_intent_id=uid("pi"), charge_id=uid("ch"))
        )

    async def payment_failed(
        self, deal: Deal, milestone_id: str, *, attempt: int, reason: str = "Card declined"
    ) -> str:
        base = await self._money(deal, milestone_id)
        return await self.deliver(
            PaymentFailed(**base, attempt=attempt, reason=reason, failure_code="card_declined")
        )

    async def payment_action_required(
        self, deal: Deal, milestone_id: str, *, attempt: int, secret: str
    ) -> str:
        base = await self._money(deal, milestone_id)
        return await self.deliver(
            PaymentActionRequired(
                **base, attempt=attempt, payment_intent_id=uid("pi"), client_secret=secret
            )
        )

    async def payment_released(self, deal: Deal, milestone_id: str) -> str:
        base = await self._money(deal, milestone_id)
        fee = base["amount"] // 10
        return await self.deliver(
            PaymentReleased(
                **base,
                transfer_id=uid("tr"),
                amount_to_freelancer=base["amount"] - fee,
                platform_fee=fee,
            )
        )

    async def payment_refunded(self, deal: Deal, milestone_id: str) -> str:
        base = await self._money(deal, milestone_id)
        return await self.deliver(PaymentRefunded(**base, refund_id=uid("re"), charge_id=uid("ch")))

    async def payment_chargeback_opened(self, deal: Deal, milestone_id: str) -> str:
        base = await self._money(deal, milestone_id)
        return await self.deliver(
            PaymentChargebackOpened(
                **base,
                charge_id=uid("ch"),
                stripe_dispute_id=uid("dp"),
                chargeback_amount=base["amount"],
                reason="fraudulent",
                funds_released=False,
            )
        )

    async def payment_split_settled(
        self, deal: Deal, milestone_id: str, *, dispute_id: str, to_freelancer: int
    ) -> str:
        base = await self._money(deal, milestone_id)
        fee = to_freelancer // 10
        return await self.deliver(
            PaymentSplitSettled(
                **base,
                dispute_id=dispute_id,
                transfer_id=uid("tr"),
                refund_id=uid("re"),
                amount_to_freelancer=to_freelancer - fee,
                platform_fee=fee,
                amount_refunded=base["amount"] - to_freelancer,
            )
        )

    # --- what the service wrote --------------------------------------------------------------

    async def events(self, contract_id: str, *types: str) -> list[dict[str, Any]]:
        """The contract's outgoing events in outbox order: ``{"type": ..., **payload}``;
        ``types`` are short names (``milestone.approved``) and filter the list."""
        async with self.db.transaction() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.key == contract_id)
                    .order_by(col(OutboxMessage.id))
                )
            ).all()
        wanted = {f"cairn.{t}" for t in types}
        return [
            {"type": r.event_type.removeprefix("cairn."), **json.loads(r.payload)}
            for r in rows
            if not wanted or r.event_type in wanted
        ]

    async def fingerprint(self) -> dict[str, Any]:
        """Counts of everything a command could write, and every milestone's version."""
        counts: dict[str, Any] = {}
        async with self.db.transaction() as session:
            conn = await session.connection()
            for table in (
                "outbox",
                "milestone_history",
                "messages",
                "disputes",
                "jobs",
                "contracts",
                "marketplace_settings",
            ):
                counts[table] = (
                    await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")
                ).scalar_one()
            counts["contract_states"] = sorted(
                (await conn.exec_driver_sql("SELECT id, state FROM contracts")).all()
            )
            counts["milestones"] = sorted(
                (
                    await session.exec(
                        select(MilestoneRow.id, MilestoneRow.version, MilestoneRow.state)
                    )
                ).all()
            )
        return counts

    async def history_rows(self, milestone_id: str) -> list[HistoryRow]:
        async with self.db.transaction() as session:
            return list(
                (
                    await session.exec(
                        select(HistoryRow)
                        .where(HistoryRow.milestone_id == milestone_id)
                        .order_by(col(HistoryRow.id))
                    )
                ).all()
            )

    async def outbox_count(self) -> int:
        async with self.db.transaction() as session:
            n = (await session.exec(select(func.count()).select_from(OutboxMessage))).one()
        return int(n)


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``r`` is a problem+json refusal with ``status`` (and ``code``)."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    if code is not None:
        assert body["code"] == code, body
    assert body["detail"], body
    return body
