"""A contract's live-updates stream reads its milestones' history by contract, after a
cursor (decision 33): index it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_milestone_history_contract_id_id", "milestone_history", ["contract_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_milestone_history_contract_id_id", table_name="milestone_history")
