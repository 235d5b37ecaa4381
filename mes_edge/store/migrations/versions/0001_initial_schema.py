"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:38:58.122370
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mes_edge.store.tables import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "confirmations",
        sa.Column("cursor", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("confirmation_id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("op_no", sa.String(length=64), nullable=False),
        sa.Column("work_center", sa.String(length=64), nullable=False),
        sa.Column("yield_qty", sa.BigInteger(), nullable=False),
        sa.Column("scrap_qty", sa.BigInteger(), nullable=False),
        sa.Column("rework_qty", sa.BigInteger(), nullable=False),
        sa.Column(
            "scrap_reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("actual_start", UtcDateTime(), nullable=True),
        sa.Column("actual_end", UtcDateTime(), nullable=True),
        sa.Column("posting_date", sa.Date(), nullable=False),
        sa.Column("personnel", sa.String(length=200), nullable=True),
        sa.Column("reverses", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("committed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cursor", name=op.f("pk_confirmations")),
        sa.UniqueConstraint("confirmation_id", name=op.f("uq_confirmations_confirmation_id")),
    )
    with op.batch_alter_table("confirmations", schema=None) as batch_op:
        batch_op.create_index("ix_confirmations_order_id", ["order_id"], unique=False)

    op.create_table(
        "counter_checkpoints",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device", "tag", name=op.f("pk_counter_checkpoints")),
    )
    op.create_table(
        "downtimes",
        sa.Column("downtime_id", sa.String(length=200), nullable=False),
        sa.Column("work_center", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("start", UtcDateTime(), nullable=False),
        sa.Column("end", UtcDateTime(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("reason_by", sa.String(length=200), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("downtime_id", name=op.f("pk_downtimes")),
    )
    with op.batch_alter_table("downtimes", schema=None) as batch_op:
        batch_op.create_index("ix_downtimes_work_center", ["work_center"], unique=False)

    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("work_center", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("source_ts", UtcDateTime(), nullable=True),
        sa.Column("received_ts", UtcDateTime(), nullable=False),
        sa.Column("committed_at", UtcDateTime(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_order_id", ["order_id"], unique=False)

    op.create_table(
        "operations",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("op_no", sa.String(length=64), nullable=False),
        sa.Column("work_center", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("counting", sa.String(length=64), nullable=False),
        sa.Column("planned_qty", sa.BigInteger(), nullable=False),
        sa.Column("good", sa.BigInteger(), nullable=False),
        sa.Column("scrap", sa.BigInteger(), nullable=False),
        sa.Column("rework", sa.BigInteger(), nullable=False),
        sa.Column(
            "scrap_by_reason",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("actual_start", UtcDateTime(), nullable=True),
        sa.Column("actual_end", UtcDateTime(), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "op_no", name=op.f("pk_operations")),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index("ix_operations_work_center", ["work_center"], unique=False)

    op.create_table(
        "rejected_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("work_center", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_ts", UtcDateTime(), nullable=False),
        sa.Column("rejected_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_rejected_events_event_id")),
    )
    with op.batch_alter_table("rejected_events", schema=None) as batch_op:
        batch_op.create_index("ix_rejected_events_work_center", ["work_center"], unique=False)

    op.create_table(
        "work_centers",
        sa.Column("work_center", sa.String(length=64), nullable=False),
        sa.Column("machine_state", sa.String(length=64), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("work_center", name=op.f("pk_work_centers")),
    )
    op.create_table(
        "work_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("material", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("demand_type", sa.String(length=64), nullable=False),
        sa.Column("sales_order", sa.String(length=64), nullable=True),
        sa.Column("customer", sa.String(length=200), nullable=True),
        sa.Column("due", UtcDateTime(), nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("actual_start", UtcDateTime(), nullable=True),
        sa.Column("actual_end", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_work_orders")),
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.create_index("ix_work_orders_status", ["status"], unique=False)
        batch_op.create_index("ix_work_orders_updated_seq", ["updated_seq"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_work_orders_updated_seq")
        batch_op.drop_index("ix_work_orders_status")

    op.drop_table("work_orders")
    op.drop_table("work_centers")
    with op.batch_alter_table("rejected_events", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_events_work_center")

    op.drop_table("rejected_events")
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_work_center")

    op.drop_table("operations")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_order_id")

    op.drop_table("events")
    with op.batch_alter_table("downtimes", schema=None) as batch_op:
        batch_op.drop_index("ix_downtimes_work_center")

    op.drop_table("downtimes")
    op.drop_table("counter_checkpoints")
    with op.batch_alter_table("confirmations", schema=None) as batch_op:
        batch_op.drop_index("ix_confirmations_order_id")

    op.drop_table("confirmations")
