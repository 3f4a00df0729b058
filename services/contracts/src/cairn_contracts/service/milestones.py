"""Milestone use cases: each is one transaction that checks the rules, changes the
milestone, appends a history row and writes the outgoing events (DESIGN §3, §8)."""

from __future__ import annotations

from typing import Any, Literal

from cairn_chassis.db import Database, locked
from cairn_chassis.outbox import utcnow
from cairn_schemas.base import Event
from cairn_schemas.events import (
    DisputeOpened,
    DisputeResolved,
    MilestoneApproved,
    MilestoneChangesRequested,
    MilestoneCreated,
    MilestoneDeleted,
    MilestoneEdited,
    MilestoneFunded,
    MilestoneFundingRequested,
    MilestonePaymentActionRequired,
    MilestonePaymentFailed,
    MilestoneRefunded,
    MilestoneRefundOrdered,
    MilestoneRefundRequestDeclined,
    MilestoneRefundRequested,
    MilestoneReleased,
    MilestoneReleaseRequested,
    MilestoneSentForApproval,
    MilestoneSettled,
    MilestoneSplitOrdered,
    MilestoneSubmitted,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.tables import (
    ContractRow,
    DisputeRow,
    HistoryRow,
    MessageRow,
    MilestoneRow,
)
from cairn_contracts.domain import rules
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.rules import Command, Context, decide
from cairn_contracts.service.common import (
    Calendar,
    Caller,
    load_contract,
    load_milestone,
    milestone_event,
    new_id,
    pinned_settings,
    publish,
    record_history,
    workflow_settings,
)

RefundReason = Literal[
    "freelancer_refund", "refund_request_accepted", "refund_deadline", "dispute", "holding_limit"
]


def _apply(contract: ContractRow, m: MilestoneRow, command: Command, caller: Caller) -> str:
    """Run the rules; move the milestone; return the state it left."""
    ctx = Context(
        state=m.state,  # type: ignore[arg-type]
        contract=contract.state,  # type: ignore[arg-type]
        settings=workflow_settings(contract),
        actor=caller.role,
        refund_requested=m.refund_requested,
        chargeback_open=m.chargeback_at is not None,
    )
    new_state = decide(command, ctx)
    previous = m.state
    m.state = new_state
    m.version += 1
    m.updated_at = utcnow()
    return previous


def _emit(
    session: AsyncSession,
    m: MilestoneRow,
    command: Command | str,
    caller: Caller,
    previous: str | None,
    events: list[Event],
) -> None:
    event_id = None
    for event in events:
        eid = publish(session, event)
        event_id = event_id or eid
    session.add(m)
    record_history(session, m, str(command), caller, previous, event_id)


def _funding_requested(
    contract: ContractRow,
    m: MilestoneRow,
    caller: Caller,
    trigger: Literal["customer", "freelancer_approval", "contract_started"],
) -> MilestoneFundingRequested:
    settings = pinned_settings(contract)
    m.funding_attempt += 1
    m.client_secret = None
    m.failure_reason = None
    return milestone_event(
        MilestoneFundingRequested,
        m,
        caller.actor,
        customer_id=contract.customer_id,
        freelancer_id=contract.freelancer_id,
        platform_fee_bps=settings.platform_fee_bps,
        attempt=m.funding_attempt,
        trigger=trigger,
        chargeback_after_release=settings.chargeback_after_release,
    )


async def create(
    db: Database, caller: Caller, contract_id: str, title: str, description: str, amount: int
) -> MilestoneRow:
    """Add a milestone ("Add Task" in customer mode)."""
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id, lock=True)
        ctx = Context(
            state=None,
            contract=contract.state,  # type: ignore[arg-type]
            settings=workflow_settings(contract),
            actor=caller.role,
        )
        state = decide(Command.CREATE, ctx)
        m = MilestoneRow(
            id=new_id("ms"),
            contract_id=contract.id,
            marketplace_id=contract.marketplace_id,
            title=title,
            description=description,
            amount=amount,
            currency=pinned_settings(contract).currency,
            state=state,
            version=1,
            creator_role=caller.role,
        )
        session.add(m)
        await session.flush()
        _emit(
            session,
            m,
            Command.CREATE,
            caller,
            None,
            [
                milestone_event(
                    MilestoneCreated,
                    m,
                    caller.actor,
                    description=description,
                    created_by=caller.role,
                )
            ],
        )
        return m


async def edit(
    db: Database, caller: Caller, milestone_id: str, if_match: int, changes: dict[str, Any]
) -> MilestoneRow:
    """The creator edits an unpaid milestone; needs the current version (If-Match)."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        if if_match != m.version:
            raise Refused(
                "milestone.stale_version",
                f"The milestone changed since you loaded it (now version "
                f"{m.version}); reload it and try again.",
                status=412,
            )
        before = (m.title, m.amount, m.description)
        previous = _apply(contract, m, Command.EDIT, caller)
        for field, value in changes.items():
            setattr(m, field, value)
        _emit(
            session,
            m,
            Command.EDIT,
            caller,
            previous,
            [
                milestone_event(
                    MilestoneEdited,
                    m,
                    caller.actor,
                    description=m.description,
                    previous_title=before[0],
                    previous_amount=before[1],
                    previous_description=before[2],
                )
            ],
        )
        return m


async def send_for_approval(db: Database, caller: Caller, milestone_id: str) -> MilestoneRow:
    """The customer sends a task to the freelancer to review."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.SEND_FOR_APPROVAL, caller)
        _emit(
            session,
            m,
            Command.SEND_FOR_APPROVAL,
            caller,
            previous,
            [milestone_event(MilestoneSentForApproval, m, caller.actor, description=m.description)],
        )
        return m


async def approve(db: Database, caller: Caller, milestone_id: str, version: int) -> MilestoneRow:
    """The freelancer approves the version they saw; with sub-option 3 on a live contract
    the customer's card is charged at once."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        if version != m.version:
            raise Refused(
                "milestone.stale_version",
                f"You approved version {version}, but the task is now version "
                f"{m.version}; review the latest version.",
                status=409,
            )
        previous = _apply(contract, m, Command.APPROVE, caller)
        events: list[Event] = [
            milestone_event(MilestoneApproved, m, caller.actor, approved_version=version)
        ]
        m.approved_version = m.version
        if m.state == "funding":
            events.append(_funding_requested(contract, m, caller, "freelancer_approval"))
        _emit(session, m, Command.APPROVE, caller, previous, events)
        return m


async def request_changes(
    db: Database, caller: Caller, milestone_id: str, message: str
) -> MilestoneRow:
    """The freelancer asks for changes; the message also goes to the contract's thread."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.REQUEST_CHANGES, caller)
        session.add(
            MessageRow(
                id=new_id("msg"),
                contract_id=contract.id,
                milestone_id=m.id,
                author_id=caller.user_id,
                author_role=caller.role,
                body=message,
            )
        )
        _emit(
            session,
            m,
            Command.REQUEST_CHANGES,
            caller,
            previous,
            [milestone_event(MilestoneChangesRequested, m, caller.actor, message=message)],
        )
        return m


async def delete(db: Database, caller: Caller, milestone_id: str) -> MilestoneRow:
    """The creator deletes an unpaid milestone where the settings allow it."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.DELETE, caller)
        _emit(
            session,
            m,
            Command.DELETE,
            caller,
            previous,
            [milestone_event(MilestoneDeleted, m, caller.actor, previous_state=previous)],
        )
        return m


async def pay(db: Database, caller: Caller, milestone_id: str) -> MilestoneRow:
    """The customer pays an approved milestone: payments is asked to charge the card."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.PAY, caller)
        _emit(
            session,
            m,
            Command.PAY,
            caller,
            previous,
            [_funding_requested(contract, m, caller, "customer")],
        )
        return m


async def charge_approved_on_start(
    session: AsyncSession, contract: ContractRow, caller: Caller
) -> None:
    """Sub-option 3: when a contract goes live, every approved milestone is charged."""
    settings = workflow_settings(contract)
    if not settings.charge_on_freelancer_approval:
        return
    rows = (
        await session.exec(
            locked(
                select(MilestoneRow)
                .where(MilestoneRow.contract_id == contract.id, MilestoneRow.state == "approved")
                .order_by(col(MilestoneRow.created_at))
            )
        )
    ).all()
    for m in rows:
        previous = m.state
        m.state = "funding"
        m.version += 1
        m.updated_at = utcnow()
        _emit(
            session,
            m,
            Command.PAY,
            caller,
            previous,
            [_funding_requested(contract, m, caller, "contract_started")],
        )


async def complete(db: Database, caller: Caller, milestone_id: str) -> MilestoneRow:
    """The freelancer marks the work complete; the auto-release clock starts."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.COMPLETE, caller)
        days = pinned_settings(contract).auto_release_after_days
        m.submitted_at = utcnow()
        m.auto_release_at = m.submitted_at + Calendar.days(days) if days else None
        _emit(
            session,
            m,
            Command.COMPLETE,
            caller,
            previous,
            [
                milestone_event(
                    MilestoneSubmitted, m, caller.actor, auto_release_at=m.auto_release_at
                )
            ],
        )
        return m


def _release_requested(
    contract: ContractRow,
    m: MilestoneRow,
    caller: Caller,
    trigger: Literal["customer", "auto_release", "dispute", "holding_limit"],
    dispute_id: str | None = None,
) -> MilestoneReleaseRequested:
    return milestone_event(
        MilestoneReleaseRequested,
        m,
        caller.actor,
        trigger=trigger,
        platform_fee_bps=pinned_settings(contract).platform_fee_bps,
        freelancer_id=contract.freelancer_id,
        dispute_id=dispute_id,
    )


def _refund_ordered(
    m: MilestoneRow, caller: Caller, reason: RefundReason, dispute_id: str | None = None
) -> MilestoneRefundOrdered:
    return milestone_event(
        MilestoneRefundOrdered, m, caller.actor, reason=reason, dispute_id=dispute_id
    )


async def release(
    db: Database, caller: Caller, milestone_id: str, command: Command = Command.RELEASE
) -> MilestoneRow:
    """The customer approves the work (or the timer fires): payments pays the freelancer."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, command, caller)
        m.refund_requested = False  # releasing answers any open refund request
        trigger: Literal["customer", "auto_release"] = (
            "auto_release" if command == Command.AUTO_RELEASE else "customer"
        )
        _emit(
            session,
            m,
            command,
            caller,
            previous,
            [_release_requested(contract, m, caller, trigger)],
        )
        return m


def _open_dispute(
    session: AsyncSession,
    contract: ContractRow,
    m: MilestoneRow,
    caller: Caller,
    reason: str,
    origin: Literal["customer", "refund_request_declined"],
) -> DisputeOpened:
    dispute = DisputeRow(
        id=new_id("dp"),
        marketplace_id=m.marketplace_id,
        contract_id=contract.id,
        milestone_id=m.id,
        reason=reason,
        opened_by=caller.user_id,
    )
    session.add(dispute)
    m.dispute_id = dispute.id
    m.refund_requested = False
    return DisputeOpened(
        marketplace_id=m.marketplace_id,
        contract_id=contract.id,
        dispute_id=dispute.id,
        milestone_id=m.id,
        milestone_title=m.title,
        reason=reason,
        opened_by=caller.actor,
        amount=m.amount,
        currency=m.currency,
        origin=origin,
    )


async def dispute(db: Database, caller: Caller, milestone_id: str, reason: str) -> MilestoneRow:
    """The customer disputes the work; operators decide."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.DISPUTE, caller)
        opened = _open_dispute(session, contract, m, caller, reason, "customer")
        _emit(session, m, Command.DISPUTE, caller, previous, [opened])
        return m


async def request_refund(
    db: Database, caller: Caller, milestone_id: str, reason: str
) -> MilestoneRow:
    """The customer asks the freelancer for the money back; the freelancer has
    ``refund_response_days`` to answer."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.REQUEST_REFUND, caller)
        m.refund_requested = True
        m.refund_reason = reason
        m.refund_respond_by = utcnow() + Calendar.days(
            pinned_settings(contract).refund_response_days
        )
        _emit(
            session,
            m,
            Command.REQUEST_REFUND,
            caller,
            previous,
            [
                milestone_event(
                    MilestoneRefundRequested,
                    m,
                    caller.actor,
                    reason=reason,
                    respond_by=m.refund_respond_by,
                )
            ],
        )
        return m


async def answer_refund_request(
    db: Database, caller: Caller, milestone_id: str, accept: bool, message: str | None
) -> MilestoneRow:
    """The freelancer accepts (refund) or declines (dispute) the customer's request."""
    command = Command.ACCEPT_REFUND_REQUEST if accept else Command.DECLINE_REFUND_REQUEST
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, command, caller)
        events: list[Event]
        if accept:
            m.refund_requested = False
            events = [_refund_ordered(m, caller, "refund_request_accepted")]
        else:
            declined = milestone_event(
                MilestoneRefundRequestDeclined, m, caller.actor, message=message
            )
            opened = _open_dispute(
                session,
                contract,
                m,
                caller,
                m.refund_reason or "Refund request declined",
                "refund_request_declined",
            )
            events = [declined, opened]
        _emit(session, m, command, caller, previous, events)
        return m


async def refund(
    db: Database, caller: Caller, milestone_id: str, command: Command = Command.REFUND
) -> MilestoneRow:
    """The freelancer gives the money back (or the refund deadline passes)."""
    reason: RefundReason = (
        "refund_deadline" if command == Command.REFUND_DEADLINE else "freelancer_refund"
    )
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, command, caller)
        m.refund_requested = False
        _emit(session, m, command, caller, previous, [_refund_ordered(m, caller, reason)])
        return m


async def holding_limit(db: Database, caller: Caller, milestone_id: str) -> MilestoneRow:
    """The escrow reached its holding limit: the marketplace's fallback applies."""
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        previous = _apply(contract, m, Command.HOLDING_LIMIT, caller)
        m.refund_requested = False  # the fallback settles any open refund request
        event: Event = (
            _release_requested(contract, m, caller, "holding_limit")
            if m.state == "releasing"
            else _refund_ordered(m, caller, "holding_limit")
        )
        _emit(session, m, Command.HOLDING_LIMIT, caller, previous, [event])
        return m


async def resolve_dispute(
    db: Database,
    caller: Caller,
    dispute_id: str,
    outcome: Literal["release", "refund", "split"],
    amount_to_freelancer: int | None,
    note: str,
) -> DisputeRow:
    """An operator resolves a dispute: release, refund, or a split adding up exactly."""
    async with db.transaction() as session:
        row = (await session.exec(select(DisputeRow).where(DisputeRow.id == dispute_id))).first()
        if row is None or row.marketplace_id != caller.marketplace_id:
            raise NotFound("dispute.not_found", "No such dispute.")
        contract, m = await load_milestone(session, caller, row.milestone_id)
        if row.status != "open":
            raise Refused("dispute.already_resolved", "This dispute was already resolved.")
        command = {
            "release": Command.RESOLVE_RELEASE,
            "refund": Command.RESOLVE_REFUND,
            "split": Command.RESOLVE_SPLIT,
        }[outcome]
        to_freelancer = {"release": m.amount, "refund": 0}.get(outcome, amount_to_freelancer)
        if to_freelancer is None or (outcome == "split" and not 0 < to_freelancer < m.amount):
            raise Refused(
                "dispute.invalid_split",
                f"A split names an amount for the freelancer between 1 and "
                f"{m.amount - 1} (the rest, up to {m.amount}, is refunded).",
                status=422,
            )
        previous = _apply(contract, m, command, caller)
        to_customer = m.amount - to_freelancer
        row.status, row.outcome, row.note = "resolved", outcome, note
        row.amount_to_freelancer, row.amount_to_customer = to_freelancer, to_customer
        row.resolved_by, row.resolved_at = caller.user_id, utcnow()
        session.add(row)
        resolved = DisputeResolved(
            marketplace_id=m.marketplace_id,
            contract_id=contract.id,
            dispute_id=row.id,
            milestone_id=m.id,
            milestone_title=m.title,
            outcome=outcome,
            amount=m.amount,
            currency=m.currency,
            amount_to_freelancer=to_freelancer,
            amount_to_customer=to_customer,
            note=note,
            resolved_by=caller.actor,
        )
        money: Event
        if outcome == "release":
            money = _release_requested(contract, m, caller, "dispute", row.id)
        elif outcome == "refund":
            money = _refund_ordered(m, caller, "dispute", row.id)
        else:
            m.split_to_freelancer = to_freelancer
            money = milestone_event(
                MilestoneSplitOrdered,
                m,
                caller.actor,
                dispute_id=row.id,
                amount_to_freelancer=to_freelancer,
                amount_to_customer=to_customer,
                platform_fee_bps=pinned_settings(contract).platform_fee_bps,
                freelancer_id=contract.freelancer_id,
            )
        _emit(session, m, command, caller, previous, [resolved, money])
        return row


# --- outcomes reported by the payments service -------------------------------------------


async def payment_outcome(
    session: AsyncSession,
    caller: Caller,
    milestone_id: str,
    command: Command,
    attempt: int | None = None,
    **details: Any,
) -> MilestoneRow | None:
    """Apply a payments outcome inside the consumer's (inbox) transaction.

    An outcome for an older funding attempt, or one the milestone has already moved past,
    is ignored: the payments service may report late or twice.
    """
    contract, m = await load_milestone(session, caller, milestone_id)
    if attempt is not None and attempt != m.funding_attempt:
        return None
    split_ordered = m.split_to_freelancer is not None
    if (command == Command.RELEASE_COMPLETED and split_ordered) or (
        command == Command.SPLIT_COMPLETED and not split_ordered
    ):
        return None  # an outcome that answers an order this milestone never gave
    try:
        previous = _apply(contract, m, command, caller)
    except Refused:
        return None
    event: Event
    if command == Command.PAYMENT_SUCCEEDED:
        m.funded_at = utcnow()
        m.holding_limit_at = m.funded_at + Calendar.days(
            rules.holding_limit_days(contract.freelancer_country)
        )
        m.client_secret = None
        m.payment_intent_id = details["payment_intent_id"]
        event = milestone_event(
            MilestoneFunded,
            m,
            caller.actor,
            payment_intent_id=details["payment_intent_id"],
            charge_id=details["charge_id"],
            attempt=attempt,
        )
    elif command == Command.PAYMENT_FAILED:
        m.failure_reason = details["reason"]
        m.client_secret = None
        event = milestone_event(
            MilestonePaymentFailed,
            m,
            caller.actor,
            reason=details["reason"],
            failure_code=details.get("failure_code"),
            attempt=attempt,
            payment_intent_id=details.get("payment_intent_id"),
        )
    elif command == Command.RELEASE_COMPLETED:
        event = milestone_event(
            MilestoneReleased,
            m,
            caller.actor,
            transfer_id=details["transfer_id"],
            amount_to_freelancer=details["amount_to_freelancer"],
            platform_fee=details["platform_fee"],
        )
    elif command == Command.REFUND_COMPLETED:
        event = milestone_event(MilestoneRefunded, m, caller.actor, refund_id=details["refund_id"])
    else:
        event = milestone_event(MilestoneSettled, m, caller.actor, **details)
    _emit(session, m, command, caller, previous, [event])
    return m


async def payment_action_required(
    session: AsyncSession,
    caller: Caller,
    milestone_id: str,
    attempt: int,
    payment_intent_id: str,
    client_secret: str,
) -> MilestoneRow | None:
    """The card needs the customer (SCA): expose the client secret; stay in ``funding``."""
    _, m = await load_milestone(session, caller, milestone_id)
    if attempt != m.funding_attempt or m.state != "funding":
        return None
    m.client_secret = client_secret
    m.payment_intent_id = payment_intent_id
    m.version += 1
    m.updated_at = utcnow()
    _emit(
        session,
        m,
        "payment_action_required",
        caller,
        m.state,
        [
            milestone_event(
                MilestonePaymentActionRequired,
                m,
                caller.actor,
                payment_intent_id=payment_intent_id,
                client_secret=client_secret,
                attempt=attempt,
            )
        ],
    )
    return m


async def chargeback_opened(
    session: AsyncSession, caller: Caller, milestone_id: str, reason: str
) -> MilestoneRow | None:
    """The payments service froze the escrow for a chargeback: record it (history row, no
    state change); from now on commands that order money to move are refused, and the
    timers leave the milestone alone. The operators handle the chargeback in Stripe."""
    _, m = await load_milestone(session, caller, milestone_id)
    if m.chargeback_at is not None:
        return None
    m.chargeback_at = utcnow()
    m.chargeback_reason = reason
    m.version += 1
    m.updated_at = m.chargeback_at
    _emit(session, m, "chargeback_opened", caller, m.state, [])
    return m


async def history(db: Database, caller: Caller, milestone_id: str) -> list[HistoryRow]:
    """Every transition of a milestone, oldest first."""
    async with db.transaction() as session:
        await load_milestone(session, caller, milestone_id)
        rows = await session.exec(
            select(HistoryRow)
            .where(HistoryRow.milestone_id == milestone_id)
            .order_by(col(HistoryRow.id))
        )
        return list(rows.all())
