"""RF segments: on PostgreSQL the primary key carries the segment, in place of a second index

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The full recompute reads (customer_id, segment) from an index alone, in customer order.
    # Carried by the primary key, a move writes two index entries instead of three (each a
    # random page, logged whole after a checkpoint). SQLite has no INCLUDE and keeps its index.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE UNIQUE INDEX customer_segments_pkey_segment "
               "ON customer_segments (customer_id) INCLUDE (segment)")
    op.execute("ALTER TABLE customer_segments DROP CONSTRAINT customer_segments_pkey, "
               "ADD CONSTRAINT customer_segments_pkey PRIMARY KEY "
               "USING INDEX customer_segments_pkey_segment")
    op.drop_index("ix_customer_segments_customer_segment", table_name="customer_segments")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_customer_segments_customer_segment", "customer_segments",
                    ["customer_id", "segment"])
    op.execute("CREATE UNIQUE INDEX customer_segments_pkey_plain "
               "ON customer_segments (customer_id)")
    op.execute("ALTER TABLE customer_segments DROP CONSTRAINT customer_segments_pkey, "
               "ADD CONSTRAINT customer_segments_pkey PRIMARY KEY "
               "USING INDEX customer_segments_pkey_plain")
