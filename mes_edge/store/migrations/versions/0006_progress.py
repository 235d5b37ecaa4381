"""issue 11: machine-state timeline (state_intervals) and OEE rollups (oee_buckets)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mes_edge.store.tables import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BUCKET_COLUMNS = ("running_us", "outside_run_us", "micro_us", "setup_us", "stops_us",
                   "planned_stops_us", "unknown_us", "good", "scrap", "units_without_ideal",
                   "ideal_us", "scrap_ideal_us")


def upgrade() -> None:
    op.create_table(
        "state_intervals",
        sa.Column("work_center", sa.String(length=64), nullable=False),
        sa.Column("start", UtcDateTime(), nullable=False),
        sa.Column("end", UtcDateTime(), nullable=True),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("downtime_id", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("reason_by", sa.String(length=200), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("work_center", "start", name=op.f("pk_state_intervals")),
    )
    op.create_index("ix_state_intervals_downtime_id", "state_intervals", ["downtime_id"])
    op.create_index("ix_state_intervals_end", "state_intervals", ["end"])
    op.create_table(
        "oee_buckets",
        sa.Column("work_center", sa.String(length=64), nullable=False),
        sa.Column("bucket_start", UtcDateTime(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _BUCKET_COLUMNS),
        sa.PrimaryKeyConstraint("work_center", "bucket_start", name=op.f("pk_oee_buckets")),
    )
    op.create_index("ix_oee_buckets_bucket_start", "oee_buckets", ["bucket_start"])


def downgrade() -> None:
    op.drop_index("ix_oee_buckets_bucket_start", table_name="oee_buckets")
    op.drop_table("oee_buckets")
    op.drop_index("ix_state_intervals_end", table_name="state_intervals")
    op.drop_index("ix_state_intervals_downtime_id", table_name="state_intervals")
    op.drop_table("state_intervals")
