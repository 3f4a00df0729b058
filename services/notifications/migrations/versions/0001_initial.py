"""Initial schema: directory, branding, email deliveries; chassis outbox, inbox, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # --- chassis tables (timestamps with time zone: the chassis writes aware UTC times)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])
    op.create_index("ix_outbox_key_unpublished", "outbox", ["key", "id"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )

    # --- the recipient directory and branding, projected from events
    op.create_table(
        "recipients",
        sa.Column("marketplace_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "contract_parties",
        sa.Column("contract_id", sa.String(128), primary_key=True),
        sa.Column("marketplace_id", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("job_title", sa.Text(), nullable=False),
        sa.Column("customer_user_id", sa.String(128), nullable=False),
        sa.Column("customer_email", sa.String(254), nullable=False),
        sa.Column("customer_name", sa.Text(), nullable=False),
        sa.Column("freelancer_user_id", sa.String(128), nullable=False),
        sa.Column("freelancer_email", sa.String(254), nullable=False),
        sa.Column("freelancer_name", sa.Text(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contract_parties_marketplace_id", "contract_parties", ["marketplace_id"])
    op.create_table(
        "marketplace_branding",
        sa.Column("marketplace_id", sa.String(128), primary_key=True),
        sa.Column("settings_version", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("from_address", sa.String(254), nullable=False),
        sa.Column("support_address", sa.String(254), nullable=False),
        sa.Column("logo_url", sa.Text(), nullable=True),
        sa.Column("accent_colour", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )

    # --- the email outbox / delivery log
    op.create_table(
        "email_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source_event_id", sa.String(128), nullable=False),
        sa.Column("source_event_type", sa.String(128), nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("marketplace_id", sa.String(128), nullable=False),
        sa.Column("contract_id", sa.String(128), nullable=True),
        sa.Column("milestone_id", sa.String(128), nullable=True),
        sa.Column("recipient_email", sa.String(254), nullable=False),
        sa.Column("recipient_name", sa.Text(), nullable=False),
        sa.Column("recipient_user_id", sa.String(128), nullable=True),
        sa.Column("recipient_role", sa.String(16), nullable=False),
        sa.Column("from_address", sa.String(254), nullable=False),
        sa.Column("from_name", sa.Text(), nullable=False),
        sa.Column("reply_to", sa.String(254), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("source_event_id", "recipient_email",
                            name="uq_delivery_event_recipient"),
    )
    op.create_index("ix_delivery_due", "email_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_delivery_marketplace_contract", "email_deliveries",
                    ["marketplace_id", "contract_id", "status"])


def downgrade() -> None:
    for table in ("email_deliveries", "marketplace_branding", "contract_parties", "recipients",
                  "idempotency_keys", "inbox", "outbox"):
        op.drop_table(table)
