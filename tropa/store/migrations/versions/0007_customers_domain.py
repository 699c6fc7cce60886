"""customers domain: cards, aliases, tag definitions, orders, purchase totals, audit, imports;
phone and email unique; registration date

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _refuse_duplicates() -> None:
    """Phones and emails become unique: stop with a clear message if the data disagrees."""
    bind = op.get_bind()
    for column in ("phone", "email"):
        dupes = bind.execute(sa.text(
            f"SELECT {column}, COUNT(*) FROM customers WHERE {column} IS NOT NULL "
            f"GROUP BY {column} HAVING COUNT(*) > 1")).all()
        if dupes:
            raise RuntimeError(
                f"{len(dupes)} {column} values are shared by several customers, and a {column} "
                "now identifies one customer. Merge the duplicates (or clear the value on all "
                "but one) and migrate again; find them with: SELECT {column}, COUNT(*) FROM "
                f"customers GROUP BY {column} HAVING COUNT(*) > 1".replace("{column}", column))


def upgrade() -> None:
    _refuse_duplicates()
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_at", sa.Date(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_customers_phone"))
        batch_op.create_index(batch_op.f("ix_customers_phone"), ["phone"], unique=True)
        batch_op.drop_index(batch_op.f("ix_customers_email"))
        batch_op.create_index(batch_op.f("ix_customers_email"), ["email"], unique=True)

    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=False),
        sa.Column("track", sa.String(length=200), nullable=True),
        sa.Column("issued_at", _TS, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("barcode"),
        sa.UniqueConstraint("track"),
    )
    op.create_index("ix_cards_customer_id", "cards", ["customer_id"])

    op.create_table(
        "customer_aliases",
        sa.Column("alias_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("merged_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("alias_id"),
    )
    op.create_index("ix_customer_aliases_customer_id", "customer_aliases", ["customer_id"])

    op.create_table(
        "tags",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("colour", sa.String(length=7), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("placed_at", _TS, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("store", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"])

    op.create_table(
        "order_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("changed_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_order_status_changes_order_id", "order_status_changes", ["order_id"])

    op.create_table(
        "purchase_stats",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("total_spent", sa.BigInteger(), nullable=False),
        sa.Column("first_purchase_at", _TS, nullable=True),
        sa.Column("last_purchase_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "currency"),
    )
    op.create_index("ix_purchase_stats_last_purchase_at", "purchase_stats", ["last_purchase_at"])
    op.create_index("ix_purchase_stats_orders_count", "purchase_stats", ["orders_count"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=400), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_customer_id", "audit_log", ["customer_id"])

    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("report_path", sa.String(length=1000), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("import_jobs")
    op.drop_index("ix_audit_log_customer_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_purchase_stats_orders_count", table_name="purchase_stats")
    op.drop_index("ix_purchase_stats_last_purchase_at", table_name="purchase_stats")
    op.drop_table("purchase_stats")
    op.drop_index("ix_order_status_changes_order_id", table_name="order_status_changes")
    op.drop_table("order_status_changes")
    op.drop_index("ix_orders_placed_at", table_name="orders")
    op.drop_index("ix_orders_customer_id", table_name="orders")
    op.drop_table("orders")
    op.drop_table("tags")
    op.drop_index("ix_customer_aliases_customer_id", table_name="customer_aliases")
    op.drop_table("customer_aliases")
    op.drop_index("ix_cards_customer_id", table_name="cards")
    op.drop_table("cards")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_email"))
        batch_op.create_index(batch_op.f("ix_customers_email"), ["email"], unique=False)
        batch_op.drop_index(batch_op.f("ix_customers_phone"))
        batch_op.create_index(batch_op.f("ix_customers_phone"), ["phone"], unique=False)
        batch_op.drop_column("registered_at")
