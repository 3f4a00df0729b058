"""Which milestones have a deadline or a reminder due (the timers' queries)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cairn_chassis.db import Database
from sqlalchemy import ColumnElement
from sqlmodel import col, select

from cairn_contracts.adapters.tables import MilestoneRow
from cairn_contracts.domain.milestone_outcomes import HOLDING_REMINDED

BATCH = 100
Due = list[tuple[str, str]]  # (milestone id, marketplace id)


async def _due(db: Database, *conditions: ColumnElement[bool]) -> Due:
    async with db.transaction() as session:
        rows = await session.exec(
            select(MilestoneRow.id, MilestoneRow.marketplace_id)
            # A milestone frozen by a chargeback gets no reminder and no fallback.
            .where(col(MilestoneRow.chargeback_at).is_(None), *conditions)
            .limit(BATCH)
        )
        return list(rows.all())


async def auto_release_reminders(db: Database, now: datetime, before: timedelta) -> Due:
    """Submitted work whose auto-release is near and whose customer was not reminded."""
    milestone = MilestoneRow
    return await _due(
        db,
        col(milestone.state) == "submitted",
        col(milestone.auto_release_at).is_not(None),
        col(milestone.auto_release_at) <= now + before,
        col(milestone.auto_release_reminded_at).is_(None),
        col(milestone.refund_requested).is_(False),
    )


async def auto_releases(db: Database, now: datetime) -> Due:
    """Submitted work whose auto-release time has come."""
    milestone = MilestoneRow
    return await _due(
        db,
        col(milestone.state) == "submitted",
        col(milestone.auto_release_at) <= now,
        col(milestone.refund_requested).is_(False),
    )


async def refund_reminders(db: Database, now: datetime, before: timedelta) -> Due:
    """Refund requests whose deadline is near and whose freelancer was not reminded."""
    milestone = MilestoneRow
    return await _due(
        db,
        col(milestone.refund_requested).is_(True),
        col(milestone.refund_respond_by) <= now + before,
        col(milestone.refund_reminded_at).is_(None),
    )


async def refund_deadlines(db: Database, now: datetime) -> Due:
    """Refund requests left unanswered past their deadline."""
    milestone = MilestoneRow
    return await _due(
        db,
        col(milestone.state).in_(["funded", "submitted"]),
        col(milestone.refund_requested).is_(True),
        col(milestone.refund_respond_by) <= now,
    )


async def holding_reminders(db: Database, now: datetime, before: timedelta) -> Due:
    """Held money whose holding limit is near, not yet reminded."""
    milestone = MilestoneRow
    return await _due(
        db,
        col(milestone.state).in_(HOLDING_REMINDED),
        col(milestone.holding_limit_at) <= now + before,
        col(milestone.holding_reminded_at).is_(None),
    )


async def holding_limits(db: Database, now: datetime) -> Due:
    """Funded or submitted milestones at their holding limit (a dispute pauses it)."""
    milestone = MilestoneRow
    return await _due(
        db,
        col(milestone.state).in_(["funded", "submitted"]),
        col(milestone.holding_limit_at) <= now,
    )
