"""tokens operators deliveries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:47:46.986301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mes_edge.store.tables import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column(
            "work_centers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_tokens_secret_hash")),
    )
    op.create_table(
        "confirmation_deliveries",
        sa.Column("confirmation_id", sa.String(length=36), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("confirmation_id", name=op.f("pk_confirmation_deliveries")),
    )
    with op.batch_alter_table("confirmation_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_confirmation_deliveries_state", ["state"], unique=False)

    op.create_table(
        "feed_positions",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_feed_positions")),
    )
    op.create_table(
        "operators",
        sa.Column("badge", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=True),
        sa.Column(
            "work_centers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("badge", name=op.f("pk_operators")),
    )


def downgrade() -> None:

    op.drop_table("operators")
    op.drop_table("feed_positions")
    with op.batch_alter_table("confirmation_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_confirmation_deliveries_state")

    op.drop_table("confirmation_deliveries")
    op.drop_table("api_tokens")
