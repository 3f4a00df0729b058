"""The outbox keeps the trace context each event was written in (issue 19): the relay
publishes it as ``ce_traceparent``, so one trace follows a command through Kafka.

Nullable and filled only while tracing is on: expand-only, old pods ignore it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column("traceparent", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("outbox", "traceparent")
