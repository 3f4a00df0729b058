"""The contracts service's timers (DESIGN §3): auto-release of submitted work, the refund
request deadline, the escrow holding limit, and a reminder before each.

Deadlines are columns on the milestone, so they survive restarts. :func:`run_due` is
called by the worker's loop with the current time, and by tests with any time they like
(a controllable clock, no sleeping). It is safe with several replicas: the state change is
decided under the milestone's row lock by the same rules as every other command, so a
deadline that another replica already handled is refused and skipped; a reminder is sent
only if its ``*_reminded_at`` column is still empty under that lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger
from cairn_schemas.events import (
    MilestoneAutoReleaseReminder,
    MilestoneHoldingLimitReminder,
    MilestoneRefundDeadlineReminder,
)
from sqlalchemy import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.tables import ContractRow, MilestoneRow
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.rules import Command
from cairn_contracts.service import milestones
from cairn_contracts.service.common import (
    Caller,
    load_milestone,
    milestone_event,
    pinned_settings,
    publish,
)

log = get_logger(__name__)
BATCH = 100
# Reminded before the holding limit: money held while the parties (funded, submitted), an
# operator (disputed) or the freelancer's payout details (releasing: the release waits for
# them) decide. Only funded and submitted milestones get the fallback at the limit.
HOLDING_REMINDED = ("funded", "submitted", "disputed", "releasing")


def system(marketplace_id: str) -> Caller:
    """The timers act as the system."""
    return Caller(user_id="system", marketplace_id=marketplace_id, role="system")


async def _due_ids(db: Database, *conditions: ColumnElement[bool]) -> list[tuple[str, str]]:
    async with db.transaction() as session:
        rows = await session.exec(
            select(MilestoneRow.id, MilestoneRow.marketplace_id)
            # A milestone frozen by a chargeback gets no reminder and no fallback.
            .where(col(MilestoneRow.chargeback_at).is_(None), *conditions)
            .limit(BATCH)
        )
        return list(rows.all())


async def _each(ids: list[tuple[str, str]], act: Callable[[str, Caller], Awaitable[Any]]) -> int:
    done = 0
    for milestone_id, marketplace_id in ids:
        try:
            if await act(milestone_id, system(marketplace_id)) is not None:
                done += 1
        except (Refused, NotFound):
            continue  # another replica (or a person) got there first
    return done


Reminder = Callable[[AsyncSession, ContractRow, MilestoneRow], Any]


async def _remind(db: Database, milestone_id: str, caller: Caller, build: Reminder) -> Any:
    async with db.transaction() as session:
        contract, m = await load_milestone(session, caller, milestone_id)
        return build(session, contract, m)


async def run_due(db: Database, now: datetime, *, reminder_before: timedelta) -> int:
    """Fire every deadline and reminder due at ``now``; return how many fired."""
    fired = 0
    m = MilestoneRow

    def auto_release_reminder(
        session: AsyncSession, _contract: ContractRow, row: MilestoneRow
    ) -> Any:
        if (
            row.state != "submitted"
            or row.auto_release_reminded_at is not None
            or row.auto_release_at is None
            or row.refund_requested
        ):
            return None
        row.auto_release_reminded_at = now
        session.add(row)
        return publish(
            session,
            milestone_event(
                MilestoneAutoReleaseReminder,
                row,
                system(row.marketplace_id).actor,
                releases_at=row.auto_release_at,
            ),
        )

    fired += await _each(
        await _due_ids(
            db,
            col(m.state) == "submitted",
            col(m.auto_release_at).is_not(None),
            col(m.auto_release_at) <= now + reminder_before,
            col(m.auto_release_reminded_at).is_(None),
            col(m.refund_requested).is_(False),
        ),
        lambda mid, c: _remind(db, mid, c, auto_release_reminder),
    )

    fired += await _each(
        await _due_ids(
            db,
            col(m.state) == "submitted",
            col(m.auto_release_at) <= now,
            col(m.refund_requested).is_(False),
        ),
        lambda mid, c: milestones.release(db, c, mid, Command.AUTO_RELEASE),
    )

    def refund_reminder(session: AsyncSession, _contract: ContractRow, row: MilestoneRow) -> Any:
        if (
            not row.refund_requested
            or row.refund_reminded_at is not None
            or row.refund_respond_by is None
        ):
            return None
        row.refund_reminded_at = now
        session.add(row)
        return publish(
            session,
            milestone_event(
                MilestoneRefundDeadlineReminder,
                row,
                system(row.marketplace_id).actor,
                deadline=row.refund_respond_by,
            ),
        )

    fired += await _each(
        await _due_ids(
            db,
            col(m.refund_requested).is_(True),
            col(m.refund_respond_by) <= now + reminder_before / 2,
            col(m.refund_reminded_at).is_(None),
        ),
        lambda mid, c: _remind(db, mid, c, refund_reminder),
    )

    fired += await _each(
        await _due_ids(
            db,
            col(m.state).in_(["funded", "submitted"]),
            col(m.refund_requested).is_(True),
            col(m.refund_respond_by) <= now,
        ),
        lambda mid, c: milestones.refund(db, c, mid, Command.REFUND_DEADLINE),
    )

    def holding_reminder(session: AsyncSession, contract: ContractRow, row: MilestoneRow) -> Any:
        if (
            row.state not in HOLDING_REMINDED
            or row.holding_reminded_at is not None
            or row.holding_limit_at is None
        ):
            return None
        row.holding_reminded_at = now
        session.add(row)
        return publish(
            session,
            milestone_event(
                MilestoneHoldingLimitReminder,
                row,
                system(row.marketplace_id).actor,
                limit_at=row.holding_limit_at,
                fallback=pinned_settings(contract).holding_limit_fallback,
            ),
        )

    fired += await _each(
        await _due_ids(
            db,
            col(m.state).in_(HOLDING_REMINDED),
            col(m.holding_limit_at) <= now + reminder_before,
            col(m.holding_reminded_at).is_(None),
        ),
        lambda mid, c: _remind(db, mid, c, holding_reminder),
    )

    # A dispute pauses the fallback: operators decide, the reminder has told them.
    fired += await _each(
        await _due_ids(
            db, col(m.state).in_(["funded", "submitted"]), col(m.holding_limit_at) <= now
        ),
        lambda mid, c: milestones.holding_limit(db, c, mid),
    )
    if fired:
        log.info("timers.fired", count=fired)
    return fired
