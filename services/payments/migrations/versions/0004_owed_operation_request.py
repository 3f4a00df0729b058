"""A Stripe operation owed by a commit keeps its request, so the reconciler can make the
call again (same idempotency key) when the process died before it finished.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stripe_operations") as batch:
        batch.add_column(sa.Column("request", sa.Text(), nullable=True))
    op.create_index(
        "ix_stripe_operations_owed",
        "stripe_operations",
        ["updated_at"],
        postgresql_where=sa.text("status = 'started' AND request IS NOT NULL"),
        sqlite_where=sa.text("status = 'started' AND request IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_stripe_operations_owed", table_name="stripe_operations")
    with op.batch_alter_table("stripe_operations") as batch:
        batch.drop_column("request")
