"""issue 11: alerts (raised / cleared / acknowledged) and the alert webhook outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mes_edge.store.tables import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=64), nullable=False),
        sa.Column("work_center", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("raised_at", UtcDateTime(), nullable=False),
        sa.Column("cleared_at", UtcDateTime(), nullable=True),
        sa.Column("acked_by", sa.String(length=200), nullable=True),
        sa.Column("acked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_dedupe_key", "alerts", ["dedupe_key"])
    op.create_index("ix_alerts_cleared_at", "alerts", ["cleared_at"])
    op.create_table(
        "alert_webhooks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_webhooks"),
        sa.UniqueConstraint("message_id", name="uq_alert_webhooks_message_id"),
    )
    op.create_index("ix_alert_webhooks_destination", "alert_webhooks",
                    ["destination", "delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_webhooks_destination", table_name="alert_webhooks")
    op.drop_table("alert_webhooks")
    op.drop_index("ix_alerts_cleared_at", table_name="alerts")
    op.drop_index("ix_alerts_dedupe_key", table_name="alerts")
    op.drop_table("alerts")
