"""What the chaos harness verifies once the system has drained: money (against the Stripe
stand-in's own records), the ledger, event delivery, emails and every lifecycle's end."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from cairn_devstack.testing import MailSinkProcess, StripeServer
from cairn_schemas.registry import event_class
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.chaos.scenarios import Lifecycle


@dataclass
class Check:
    """One line of the report."""

    name: str
    checked: int
    violations: list[str] = field(default_factory=list)


async def _rows(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


def handled_types() -> dict[str, set[str]]:
    """The event types each consumer group acts on (from the services' own routers)."""
    from cairn_contracts.entrypoints.consumers import build_router as contracts_router
    from cairn_notifications.entrypoints.consumers import handled_event_types
    from cairn_payments.entrypoints.consumers import build_router as payments_router

    return {
        "contracts": set(contracts_router(None).handlers),  # type: ignore[arg-type]
        "payments": set(payments_router(None).handlers),  # type: ignore[arg-type]
        "notifications": {c.event_type for c in handled_event_types()},
    }


def _stripe_objects(stripe: StripeServer) -> dict[str, list[dict[str, Any]]]:
    client = stripe.client()
    out: dict[str, list[dict[str, Any]]] = {}
    for name, lister in (
        ("charges", client.v1.charges),
        ("transfers", client.v1.transfers),
        ("refunds", client.v1.refunds),
    ):
        out[name] = [o.to_dict() for o in lister.list(params={"limit": 100}).auto_paging_iter()]
    return out


async def outbox_delivery(
    dbs: dict[str, str], handled: dict[str, set[str]]
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every outbox event, and each (consumer, event) that is unsent or not yet processed."""
    published: list[tuple[str, str, str]] = []
    missing: list[str] = []
    for service in ("contracts", "payments", "notifications"):
        for event_id, event_type, payload, sent in await _rows(
            dbs[service], "SELECT event_id, event_type, payload, published_at FROM outbox"
        ):
            if sent is None:
                missing.append(f"{service} outbox {event_type} {event_id} unsent")
            published.append((event_id, event_type, payload))
    inboxes = {
        s: {r[0] for r in await _rows(dbs[s], "SELECT event_id FROM inbox")} for s in handled
    }
    for event_id, event_type, _ in published:
        for consumer, types in handled.items():
            if event_type in types and event_id not in inboxes[consumer]:
                missing.append(f"{consumer} never processed {event_type} {event_id}")
    return published, missing


async def run_checks(
    lifecycles: list[Lifecycle], dbs: dict[str, str], stripe: StripeServer, mail: MailSinkProcess
) -> list[Check]:
    """Every check; each returns the violations it found."""
    import asyncio

    checks: list[Check] = []
    stripe_objects = await asyncio.to_thread(_stripe_objects, stripe)
    charges: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in stripe_objects["charges"]:
        if c.get("status") == "succeeded" and c.get("paid", True):
            charges[c.get("transfer_group") or ""].append(c)
    charge_owner = {c["id"]: tg for tg, cs in charges.items() for c in cs}
    transfers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in stripe_objects["transfers"]:
        transfers[t.get("transfer_group") or ""].append(t)
    refunds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in stripe_objects["refunds"]:
        refunds[charge_owner.get(r.get("charge") or "", "")].append(r)

    # 1. every lifecycle ended where its script intended
    ended = Check("milestone reached its intended state", len(lifecycles))
    for lc in lifecycles:
        if lc.error or lc.final_state != lc.intended_state:
            ended.violations.append(
                f"#{lc.number} {lc.kind}: {lc.error or lc.final_state} (steps {lc.steps})"
            )
    checks.append(ended)

    # 2. money in Stripe: one charge, at most one transfer, no refund over the charge,
    #    and exactly the amounts the script implies
    money = Check("Stripe: 1 charge, 1 transfer per release, refunds ≤ charge, exact amounts", 0)
    for lc in lifecycles:
        mid = lc.milestone_id
        if mid is None:
            continue
        money.checked += 1
        got_charges = charges.get(mid, [])
        got_transfers = transfers.get(mid, [])
        got_refunds = refunds.get(mid, [])
        charged = sum(c["amount"] for c in got_charges)
        transferred = sum(t["amount"] - t.get("amount_reversed", 0) for t in got_transfers)
        refunded = sum(r["amount"] for r in got_refunds)
        if len(got_charges) > 1:
            money.violations.append(f"{mid}: {len(got_charges)} charges")
        if len(got_transfers) > 1:
            money.violations.append(f"{mid}: {len(got_transfers)} transfers")
        if refunded > charged:
            money.violations.append(f"{mid}: refunded {refunded} > charged {charged}")
        if lc.error is None and (charged, transferred, refunded) != lc.expected_money():
            money.violations.append(
                f"{mid} ({lc.kind}): charged/transferred/refunded "
                f"{(charged, transferred, refunded)} != "
                f"{lc.expected_money()}"
            )
    checks.append(money)

    # 3. the ledger sums to zero and matches Stripe to the cent
    ledger = Check("ledger sums to zero and matches Stripe", 0)
    total = await _rows(dbs["payments"], "SELECT coalesce(sum(amount), 0) FROM ledger_postings")
    if total[0][0] != 0:
        ledger.violations.append(f"sum over all accounts is {total[0][0]}")
    escrows = {
        r[0]: r
        for r in await _rows(
            dbs["payments"], "SELECT milestone_id, charged, transferred, refunded FROM escrows"
        )
    }
    for lc in lifecycles:
        mid = lc.milestone_id
        if mid is None or mid not in escrows:
            continue
        ledger.checked += 1
        _, charged, transferred, refunded = escrows[mid]
        stripe_charged = sum(c["amount"] for c in charges.get(mid, []))
        stripe_transferred = sum(
            t["amount"] - t.get("amount_reversed", 0) for t in transfers.get(mid, [])
        )
        stripe_refunded = sum(r["amount"] for r in refunds.get(mid, []))
        if (charged, transferred, refunded) != (
            stripe_charged,
            stripe_transferred,
            stripe_refunded,
        ):
            ledger.violations.append(
                f"{mid}: escrow {(charged, transferred, refunded)} != Stripe "
                f"{(stripe_charged, stripe_transferred, stripe_refunded)}"
            )
    checks.append(ledger)

    # 4. every event written to an outbox reached every consumer that acts on it
    handled = handled_types()
    published, missing = await outbox_delivery(dbs, handled)
    delivery = Check(
        "every outbox event published and consumed by each consumer", len(published), missing
    )
    checks.append(delivery)

    # 5. every expected email delivered exactly once
    from cairn_notifications.domain.catalogue import notices_for
    from cairn_notifications.service.notify import DISPUTE_OUTCOMES

    emails = Check("every expected email delivered (none failed)", 0)
    rows = await _rows(
        dbs["notifications"],
        "SELECT source_event_id, template, status, last_error FROM email_deliveries",
    )
    delivered: dict[str, set[str]] = defaultdict(set)
    for source, template, status, error in rows:
        if status == "delivered":
            delivered[source].add(template)
        else:
            emails.violations.append(f"{template} for {source}: {status} {error or ''}")
    # A dispute decision is the parties' one email about its outcome (decision 47).
    decided = {
        json.loads(payload)["milestone_id"]
        for _, event_type, payload in published
        if event_type == "cairn.dispute.resolved"
    }
    for event_id, event_type, payload in published:
        if event_type not in handled["notifications"]:
            continue
        event = event_class(event_type).model_validate(json.loads(payload))
        if event_type in DISPUTE_OUTCOMES and getattr(event, "milestone_id", None) in decided:
            continue
        for kind in notices_for(event):
            emails.checked += 1
            if kind.template not in delivered.get(event_id, set()):
                emails.violations.append(
                    f"{kind.template} for {event_type} {event_id} never delivered"
                )
    checks.append(emails)

    return checks


async def duplicate_emails(mail: MailSinkProcess) -> tuple[int, int]:
    """(messages caught, how many were a second copy of a Message-ID already caught)."""
    import asyncio

    caught = await asyncio.to_thread(mail.messages)
    by_id = Counter(m.get("message_id") for m in caught)
    return len(caught), sum(n - 1 for n in by_id.values() if n > 1)
