"""loyalty ledger: accounts, operations, buckets, entries; coupon series, coupons, redemptions

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "loyalty_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("programme", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.String(64), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("customer_id", "programme", "kind"),
    )
    op.create_index("ix_loyalty_accounts_customer_id", "loyalty_accounts", ["customer_id"])
    op.create_table(
        "loyalty_operations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", sa.String(400), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("loyalty_accounts.id"),
                  nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("found_by", sa.JSON(), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=True),
        sa.Column("cancels", sa.Integer(), nullable=True),
        sa.Column("cancelled_by", sa.Integer(), nullable=True),
        sa.Column("welcome_key", sa.String(64), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        _when("created_at"),
    )
    for column in ("account_id", "customer_id", "order_id", "cancels", "welcome_key"):
        op.create_index(f"ix_loyalty_operations_{column}", "loyalty_operations", [column])
    op.create_table(
        "loyalty_buckets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("loyalty_accounts.id"),
                  nullable=False),
        sa.Column("operation_id", sa.Integer(), sa.ForeignKey("loyalty_operations.id"),
                  nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        _when("active_from"),
        _when("expires_at", nullable=True),
        _when("notified_at", nullable=True),
        _when("created_at"),
    )
    op.create_index("ix_loyalty_buckets_account_id", "loyalty_buckets", ["account_id"])
    op.create_index("ix_loyalty_buckets_operation_id", "loyalty_buckets", ["operation_id"])
    op.create_index("ix_loyalty_buckets_expiry", "loyalty_buckets", ["expires_at", "remaining"])
    op.create_index("ix_loyalty_buckets_spend", "loyalty_buckets",
                    ["account_id", "expires_at", "id"])
    op.create_table(
        "loyalty_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("loyalty_accounts.id"),
                  nullable=False),
        sa.Column("operation_id", sa.Integer(), sa.ForeignKey("loyalty_operations.id"),
                  nullable=False),
        sa.Column("bucket_id", sa.Integer(), sa.ForeignKey("loyalty_buckets.id"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        _when("at"),
    )
    for column in ("account_id", "operation_id", "bucket_id"):
        op.create_index(f"ix_loyalty_entries_{column}", "loyalty_entries", [column])
    op.create_table(
        "coupon_series",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("alphabet", sa.String(64), nullable=False),
        sa.Column("activates_in_seconds", sa.Integer(), nullable=False),
        sa.Column("lifetime_seconds", sa.Integer(), nullable=True),
        sa.Column("uses_per_code", sa.Integer(), nullable=False),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        _when("created_at"),
    )
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("series_id", sa.String(64), sa.ForeignKey("coupon_series.id"), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("idempotency_key", sa.String(400), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("remainder", sa.BigInteger(), nullable=True),
        _when("active_from"),
        _when("expires_at", nullable=True),
        _when("issued_at"),
    )
    op.create_index("ix_coupons_series_id", "coupons", ["series_id"])
    op.create_index("ix_coupons_customer_id", "coupons", ["customer_id"])
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(64), sa.ForeignKey("coupons.code"), nullable=False),
        sa.Column("idempotency_key", sa.String(400), nullable=False, unique=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=True),
        _when("at"),
    )
    op.create_index("ix_coupon_redemptions_code", "coupon_redemptions", ["code"])


def downgrade() -> None:
    for table in ("coupon_redemptions", "coupons", "coupon_series", "loyalty_entries",
                  "loyalty_buckets", "loyalty_operations", "loyalty_accounts"):
        op.drop_table(table)
