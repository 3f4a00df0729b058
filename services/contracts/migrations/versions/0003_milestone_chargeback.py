"""A milestone remembers a chargeback on its payment (the escrow is frozen meanwhile).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("milestones") as batch:
        batch.add_column(sa.Column("chargeback_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("chargeback_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("milestones") as batch:
        batch.drop_column("chargeback_reason")
        batch.drop_column("chargeback_at")
