"""messages.provider (receipts match provider and id together); consent_changes (the record
of consents withdrawn through unsubscribe links, with their source)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=32), nullable=True))
    op.create_index("ix_deliveries_provider_provider_message_id", "deliveries",
                    ["provider", "provider_message_id"])
    op.create_table(
        "consent_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_changes_customer_id", "consent_changes", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_consent_changes_customer_id", table_name="consent_changes")
    op.drop_table("consent_changes")
    op.drop_index("ix_deliveries_provider_provider_message_id", table_name="deliveries")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("provider")
