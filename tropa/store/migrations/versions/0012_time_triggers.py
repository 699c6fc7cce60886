"""time triggers: customer dates by month-day, last events per type, trigger claims

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_dates",
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("path", sa.String(200), primary_key=True),
        sa.Column("item", sa.Integer(), primary_key=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("month_day", sa.String(5), nullable=False),
        sa.Column("value", sa.Date(), nullable=False),
        sa.Column("item_data", sa.JSON(), nullable=True),
    )
    op.create_index("ix_customer_dates_path_month_day", "customer_dates",
                    ["path", "month_day"])
    op.create_table(
        "customer_last_events",
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("event_type", sa.String(200), primary_key=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
    )
    op.create_index("ix_customer_last_events_type_at", "customer_last_events",
                    ["event_type", "last_at"])
    op.create_table(
        "trigger_claims",
        sa.Column("journey", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("occurrence", sa.String(200), primary_key=True),
        sa.Column("workflow_id", sa.String(600), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
    )
    op.create_index("ix_trigger_claims_started_at", "trigger_claims", ["started_at"])


def downgrade() -> None:
    op.drop_table("trigger_claims")
    op.drop_table("customer_last_events")
    op.drop_table("customer_dates")
