"""An escrow remembers its contract's chargeback policy and what a chargeback recorded as
owed by the freelancer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(
            sa.Column(
                "chargeback_after_release",
                sa.String(length=16),
                nullable=False,
                server_default="freelancer",
            )
        )
        batch.add_column(
            sa.Column(
                "chargeback_owed_by_freelancer",
                sa.BigInteger(),
                nullable=False,
                server_default="0",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("chargeback_owed_by_freelancer")
        batch.drop_column("chargeback_after_release")
