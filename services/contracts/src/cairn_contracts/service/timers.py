"""The contracts service's timers (DESIGN §3): auto-release of submitted work, the refund
request deadline, the escrow holding limit, and a reminder before each.

Deadlines are columns on the milestone, so they survive restarts. :func:`run_due` is
called by the worker's loop with the current time, and by tests with any time they like
(a controllable clock, no sleeping). It is safe with several replicas: each milestone is
handled in its own unit of work under its contract's lock, by the same table as every
other command, so a deadline another replica already handled is refused and skipped; a
reminder is sent only if it was not sent yet under that lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger

from cairn_contracts.adapters import due
from cairn_contracts.adapters.unit_of_work import SqlUnitOfWork
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Caller, Milestone
from cairn_contracts.service.unit_of_work import UnitOfWork

log = get_logger(__name__)
#: What a timer does to one milestone; False when there was nothing left to do.
Act = Callable[[Milestone, Caller, datetime], bool | None]


def system(marketplace_id: str) -> Caller:
    """The timers act as the system."""
    return Caller(user_id="system", marketplace_id=marketplace_id, role="system")


async def fire(uow: UnitOfWork, milestone_id: str, marketplace_id: str, act: Act) -> bool:
    """Apply one timer to one milestone in ``uow``; False when there was nothing to do
    (another replica, or a person, got there first)."""
    try:
        async with uow:
            contract = await uow.contracts.get_by_milestone(milestone_id)
            if contract is None:
                return False
            now = uow.now()
            if act(contract.milestone(milestone_id), system(marketplace_id), now) is False:
                return False
            await uow.commit()
            return True
    except (Refused, NotFound):
        return False


async def _fire(db: Database, now: datetime, found: due.Due, act: Act) -> int:
    fired = 0
    for milestone_id, marketplace_id in found:
        fired += await fire(SqlUnitOfWork(db, at=now), milestone_id, marketplace_id, act)
    return fired


remind_auto_release = Milestone.remind_auto_release
remind_refund_deadline = Milestone.remind_refund_deadline
remind_holding_limit = Milestone.remind_holding_limit


async def run_due(db: Database, now: datetime, *, reminder_before: timedelta) -> int:
    """Fire every deadline and reminder due at ``now``; return how many fired."""
    # Each pass reads what is due after the previous one fired.
    passes: list[tuple[Callable[[], Awaitable[due.Due]], Act]] = [
        (lambda: due.auto_release_reminders(db, now, reminder_before), remind_auto_release),
        (lambda: due.auto_releases(db, now), Milestone.auto_release),
        (lambda: due.refund_reminders(db, now, reminder_before / 2), remind_refund_deadline),
        (lambda: due.refund_deadlines(db, now), Milestone.refund_deadline),
        (lambda: due.holding_reminders(db, now, reminder_before), remind_holding_limit),
        (lambda: due.holding_limits(db, now), Milestone.holding_limit),
    ]
    fired = 0
    for found, act in passes:
        fired += await _fire(db, now, await found(), act)
    if fired:
        log.info("timers.fired", count=fired)
    return fired
