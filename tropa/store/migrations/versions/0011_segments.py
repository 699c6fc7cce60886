"""RF segments: current segment per customer, moves, daily snapshots, applied configurations, sweep marks

Revision ID: 0011
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_segments",
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("segment", sa.String(32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_customer_segments_segment", "customer_segments",
                    ["segment", "customer_id"])
    op.create_table(
        "segment_moves",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("from_segment", sa.String(32), nullable=True),
        sa.Column("to_segment", sa.String(32), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
    )
    op.create_index("ix_segment_moves_customer_id", "segment_moves", ["customer_id"])
    op.create_index("ix_segment_moves_at", "segment_moves", ["at"])
    op.create_table(
        "segment_snapshots",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("segment", sa.String(32), primary_key=True),
        sa.Column("customers", sa.Integer(), nullable=False),
    )
    op.create_table(
        "sweep_marks",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("done_until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rf_configs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source_yaml", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rf_configs")
    op.drop_table("sweep_marks")
    op.drop_table("segment_snapshots")
    op.drop_table("segment_moves")
    op.drop_table("customer_segments")
