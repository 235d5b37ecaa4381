"""issue 14: WIP snapshots; indexes for retention by commit time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mes_edge.store.tables import Json, UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wip_snapshots",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("taken_at", UtcDateTime(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_wip_snapshots")),
    )
    op.create_index("ix_events_committed_at", "events", ["committed_at"])
    op.create_index("ix_rejected_events_rejected_at", "rejected_events", ["rejected_at"])


def downgrade() -> None:
    op.drop_index("ix_rejected_events_rejected_at", table_name="rejected_events")
    op.drop_index("ix_events_committed_at", table_name="events")
    op.drop_table("wip_snapshots")
