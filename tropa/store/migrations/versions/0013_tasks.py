"""tasks: staff tasks created by the create_task step

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(400), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("journey", sa.String(200), nullable=False),
        sa.Column("workflow_id", sa.String(400), nullable=False),
        sa.Column("step_id", sa.String(400), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("assignee", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("due_at"),
        sa.Column("notify", sa.JSON(), nullable=False),
        sa.Column("announce_status", sa.String(32), nullable=False),
        sa.Column("announcements", sa.JSON(), nullable=False),
        _when("created_at", nullable=False),
        _when("assigned_at"),
        _when("completed_at"),
        sa.Column("completed_by", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _when("cancelled_at"),
    )
    op.create_index("ix_tasks_customer_id", "tasks", ["customer_id"])
    op.create_index("ix_tasks_status_assignee", "tasks", ["status", "assignee"])


def downgrade() -> None:
    op.drop_table("tasks")
