"""broadcasts: one message to an audience, with the snapshot of its recipients

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("send", sa.JSON(), nullable=False),
        sa.Column("start", sa.JSON(), nullable=False),
        _when("starts_at", nullable=False),
        sa.Column("holdout_percent", sa.Float(), nullable=False),
        sa.Column("workflow_id", sa.String(400), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("holdout", sa.Integer(), nullable=True),
        _when("snapshot_at"),
        _when("finished_at"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
    )
    op.create_index("ix_broadcasts_status", "broadcasts", ["status"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("broadcast_id", sa.String(64), sa.ForeignKey("broadcasts.id"),
                  primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        _when("send_at", nullable=False),
    )
    op.create_index("ix_broadcast_recipients_due", "broadcast_recipients",
                    ["broadcast_id", "state", "send_at", "customer_id"])


def downgrade() -> None:
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcasts")
