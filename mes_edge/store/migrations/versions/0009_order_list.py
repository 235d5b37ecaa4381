"""issue 14: the ERP's work-order list served from the database, newest change first

The list pages by a keyset on (updated_at, order_id), with or without a status filter; the
status index becomes (status, updated_at, order_id), which also serves start-up's "closed or
cancelled before ..." query it was used for.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_work_orders_status_updated_at", "work_orders",
                    ["status", "updated_at", "order_id"])
    op.create_index("ix_work_orders_updated_at", "work_orders", ["updated_at", "order_id"])
    op.drop_index("ix_work_orders_status", table_name="work_orders")


def downgrade() -> None:
    op.create_index("ix_work_orders_status", "work_orders", ["status"])
    op.drop_index("ix_work_orders_updated_at", table_name="work_orders")
    op.drop_index("ix_work_orders_status_updated_at", table_name="work_orders")
