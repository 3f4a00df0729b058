"""Indexes for the retention sweep: inbox rows and Idempotency-Key answers by age.

On PostgreSQL the indexes are built CONCURRENTLY (outside a transaction), so upgrading a
database whose tables are already large does not block writes meanwhile.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_inbox_processed_at", "inbox", "processed_at"),
    ("ix_idempotency_keys_created_at", "idempotency_keys", "created_at"),
]


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, table, column in INDEXES:
                op.create_index(
                    name, table, [column], postgresql_concurrently=True, if_not_exists=True
                )
    else:
        for name, table, column in INDEXES:
            op.create_index(name, table, [column], if_not_exists=True)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table, if_exists=True)
