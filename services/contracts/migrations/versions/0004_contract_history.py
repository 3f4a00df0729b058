"""Contract transitions get a history, like milestones (DESIGN §3: actor, from, to, when,
event id).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("contract_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("command", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("from_state", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.Column("to_state", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contract_history_contract_id", "contract_history", ["contract_id"])


def downgrade() -> None:
    op.drop_index("ix_contract_history_contract_id", table_name="contract_history")
    op.drop_table("contract_history")
