"""issue 14: the event log indexed by (work_center, seq)

The scrap-rate window is read back at start as the newest counts of each work center (at most
the window's length in entries): an index range per work center instead of every count of the
last hour (a million of them took 50 s).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 05:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_work_center_seq", "events", ["work_center", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_work_center_seq", table_name="events")
