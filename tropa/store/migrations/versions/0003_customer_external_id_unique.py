"""customers.external_id unique: the API finds a customer by it and answers 409 on a clash

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_external_id"))
        batch_op.create_index(batch_op.f("ix_customers_external_id"), ["external_id"],
                              unique=True)


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_external_id"))
        batch_op.create_index(batch_op.f("ix_customers_external_id"), ["external_id"],
                              unique=False)
