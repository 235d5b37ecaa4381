"""push delivery errors: ERP status and the supervisor's retry / skip

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mes_edge.store.tables import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("confirmation_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("http_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("resolution_reason", sa.Text(), nullable=True))
    # Before 0004 the push worker wrote "error" for transient failures too (5xx, timeouts,
    # refused connections). Those are "retrying" now; "error" means the ERP refused the
    # confirmation and a supervisor must decide, so only such rows keep it.
    op.execute(
        "UPDATE confirmation_deliveries SET state = 'retrying' WHERE state = 'error' AND ("
        "message LIKE 'HTTP 5%' OR message LIKE 'HTTP 408%' OR message LIKE 'HTTP 429%' "
        "OR message LIKE 'Connect%' OR message LIKE 'Read%' OR message LIKE 'Write%' "
        "OR message LIKE 'Pool%' OR message LIKE 'RemoteProtocol%')"
    )


def downgrade() -> None:
    op.execute("UPDATE confirmation_deliveries SET state = 'error' WHERE state = 'retrying'")
    op.execute("UPDATE confirmation_deliveries SET state = 'delivered' WHERE state = 'skipped'")
    with op.batch_alter_table("confirmation_deliveries", schema=None) as batch_op:
        batch_op.drop_column("resolution_reason")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("resolved_by")
        batch_op.drop_column("resolution")
        batch_op.drop_column("http_status")
