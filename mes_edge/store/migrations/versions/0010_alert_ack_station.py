"""issue 11: the station an alert was acknowledged at

An alert acknowledged on a station tablet records the operator signed in there as `acked_by`
and the station as `acked_station` (NULL: acknowledged elsewhere, e.g. on the board).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acked_station", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acked_station")
