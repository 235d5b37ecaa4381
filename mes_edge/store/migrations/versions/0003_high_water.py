"""high-water marks of seq, cursor and rejection ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "high_water",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_high_water")),
    )
    # Seed from what exists, so an upgraded database never goes back either.
    op.execute(
        "INSERT INTO high_water (name, value) "
        "SELECT 'event_seq', COALESCE(MAX(seq), 0) FROM events "
        "UNION ALL SELECT 'confirmation_cursor', COALESCE(MAX(cursor), 0) FROM confirmations "
        "UNION ALL SELECT 'rejection_id', COALESCE(MAX(id), 0) FROM rejected_events"
    )


def downgrade() -> None:
    op.drop_table("high_water")
