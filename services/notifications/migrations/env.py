"""Alembic environment of the notifications service."""

import cairn_notifications.adapters.tables  # noqa: F401 - registers the service's tables
from cairn_chassis.idempotency import IdempotentResponse  # noqa: F401 - in the metadata
from cairn_chassis.inbox import InboxRecord  # noqa: F401 - in the metadata
from cairn_chassis.migrations import run_migrations_online
from cairn_chassis.outbox import OutboxMessage  # noqa: F401 - in the metadata
from sqlmodel import SQLModel

run_migrations_online(SQLModel.metadata)
