"""Alembic environment of the contracts service."""

import cairn_contracts.adapters.tables  # noqa: F401
from cairn_chassis.idempotency import IdempotentResponse  # noqa: F401 - registers the table
from cairn_chassis.inbox import InboxRecord  # noqa: F401
from cairn_chassis.migrations import run_migrations_online
from cairn_chassis.outbox import OutboxMessage  # noqa: F401
from sqlmodel import SQLModel

run_migrations_online(SQLModel.metadata)
