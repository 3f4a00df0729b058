"""Parked events may wait for a marketplace's branding as well as for a contract.

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
    with op.batch_alter_table("parked_events") as batch:
        batch.add_column(sa.Column("waiting_for", sa.String(16), nullable=False,
                                   server_default="contract"))
        batch.add_column(sa.Column("marketplace_id", sa.String(128), nullable=True))
        batch.create_index("ix_parked_events_marketplace_id", ["marketplace_id"])


def downgrade() -> None:
    with op.batch_alter_table("parked_events") as batch:
        batch.drop_index("ix_parked_events_marketplace_id")
        batch.drop_column("marketplace_id")
        batch.drop_column("waiting_for")
