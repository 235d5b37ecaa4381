"""issue 11: alert severity escalation

An active alert whose condition becomes more severe (an order from projected late to past due,
a machine down past `down_error_minutes`) keeps its row and dedupe key and raises its severity:
`escalated_at` is when it last rose, `severity_changes` the list of changes, each with the
acknowledgement it superseded (an escalated alert asks for acknowledgement again).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mes_edge.store.tables import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("escalated_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("severity_changes", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("severity_changes")
        batch.drop_column("escalated_at")
