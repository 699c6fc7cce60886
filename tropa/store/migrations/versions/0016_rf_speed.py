"""RF speed: counted orders by customer and time, current segments by customer, as indexes
read without their tables

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The RF aggregate (last purchase, purchases in the window, per customer) reads only this
    # index, in customer order; the predicate is spelled as each database's queries spell it.
    op.create_index("ix_orders_counted_customer_placed_at", "orders",
                    ["customer_id", "placed_at"], postgresql_where=sa.text("counted"),
                    sqlite_where=sa.text("counted = 1"))
    # ... merged in customer order with the current segments, read from this index alone.
    op.create_index("ix_customer_segments_customer_segment", "customer_segments",
                    ["customer_id", "segment"])


def downgrade() -> None:
    op.drop_index("ix_customer_segments_customer_segment", table_name="customer_segments")
    op.drop_index("ix_orders_counted_customer_placed_at", table_name="orders")
