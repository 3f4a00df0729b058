"""An email's retries end at a point in time, not after a count (issue 16): ``retry_until``
(null = created_at + NOTIFICATIONS_DELIVERY_RETRY_WINDOW_S); an operator's re-queue sets
a new one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_deliveries") as batch:
        batch.add_column(sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_deliveries") as batch:
        batch.drop_column("retry_until")
