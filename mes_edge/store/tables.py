"""The database schema (SQLAlchemy Core tables); Alembic migrations in migrations/ create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:  # the usual case, on the hot path: nothing to convert
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
Id = String(200)
Code = String(64)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Append-only log of every accepted event, in commit order (seq).
events = Table(
    "events", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", Id, nullable=False, unique=True),
    Column("type", Code, nullable=False),
    Column("work_center", Code),
    Column("order_id", Code),
    Column("source", String(200), nullable=False),
    Column("actor", String(200)),
    Column("source_ts", UtcDateTime),
    Column("received_ts", UtcDateTime, nullable=False),
    Column("committed_at", UtcDateTime, nullable=False),
    Column("payload", Json, nullable=False),
    Index("ix_events_order_id", "order_id"),
)

#: Every refused event with its reason: nothing is dropped silently.
rejected_events = Table(
    "rejected_events", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", Id, unique=True),  # NULL when the input had no usable id
    Column("type", Code),
    Column("work_center", Code),
    Column("order_id", Code),
    Column("source", String(200), nullable=False),
    Column("actor", String(200)),
    Column("reason_code", Code, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Json, nullable=False),
    Column("received_ts", UtcDateTime, nullable=False),
    Column("rejected_at", UtcDateTime, nullable=False),
    Index("ix_rejected_events_work_center", "work_center"),
)

work_orders = Table(
    "work_orders", metadata,
    Column("order_id", Code, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("status", Code, nullable=False),
    Column("material", String(200), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit", Code, nullable=False),
    Column("demand_type", Code, nullable=False),
    Column("sales_order", Code),
    Column("customer", String(200)),
    Column("due", UtcDateTime),
    Column("hold_reason", Text),
    Column("actual_start", UtcDateTime),
    Column("actual_end", UtcDateTime),
    Column("updated_at", UtcDateTime),
    Column("updated_seq", BigInteger, nullable=False),
    Column("state", Json, nullable=False),  # the whole domain object, loaded at start-up
    Index("ix_work_orders_updated_seq", "updated_seq"),
    # The ERP's order list, most recently changed first, by status or not (migration 0009).
    Index("ix_work_orders_status_updated_at", "status", "updated_at", "order_id"),
    Index("ix_work_orders_updated_at", "updated_at", "order_id"),
)

operations = Table(
    "operations", metadata,
    Column("order_id", Code, primary_key=True),
    Column("op_no", Code, primary_key=True),
    Column("work_center", Code, nullable=False),
    Column("status", Code, nullable=False),
    Column("counting", Code, nullable=False),
    Column("planned_qty", BigInteger, nullable=False),
    Column("good", BigInteger, nullable=False),
    Column("scrap", BigInteger, nullable=False),
    Column("rework", BigInteger, nullable=False),
    Column("scrap_by_reason", Json, nullable=False),
    Column("actual_start", UtcDateTime),
    Column("actual_end", UtcDateTime),
    Column("updated_seq", BigInteger, nullable=False),
    Index("ix_operations_work_center", "work_center"),
)

work_centers = Table(
    "work_centers", metadata,
    Column("work_center", Code, primary_key=True),
    Column("machine_state", Code, nullable=False),
    Column("since", UtcDateTime),
    Column("updated_seq", BigInteger, nullable=False),
    Column("state", Json, nullable=False),
)

downtimes = Table(
    "downtimes", metadata,
    Column("downtime_id", Id, primary_key=True),
    Column("work_center", Code, nullable=False),
    Column("state", Code, nullable=False),
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime),
    Column("reason", String(200)),
    Column("reason_by", String(200)),
    Column("updated_seq", BigInteger, nullable=False),
    Index("ix_downtimes_work_center", "work_center"),
)

#: Last committed raw reading of each counter tag (rules derive deltas from it).
counter_checkpoints = Table(
    "counter_checkpoints", metadata,
    Column("device", Code, primary_key=True),
    Column("tag", Code, primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
)

#: The confirmations outbox: rows are never updated; `cursor` is the commit order.
confirmations = Table(
    "confirmations", metadata,
    Column("cursor", BigInteger, primary_key=True, autoincrement=False),
    Column("confirmation_id", String(36), nullable=False, unique=True),
    Column("order_id", Code, nullable=False),
    Column("op_no", Code, nullable=False),
    Column("work_center", Code, nullable=False),
    Column("yield_qty", BigInteger, nullable=False),
    Column("scrap_qty", BigInteger, nullable=False),
    Column("rework_qty", BigInteger, nullable=False),
    Column("scrap_reasons", Json, nullable=False),
    Column("unit", Code, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("actual_start", UtcDateTime),
    Column("actual_end", UtcDateTime),
    Column("posting_date", Date, nullable=False),
    Column("personnel", String(200)),
    Column("reverses", String(36)),
    Column("reason", Text),
    Column("event_id", Id, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("committed_at", UtcDateTime, nullable=False),
    Index("ix_confirmations_order_id", "order_id"),
)

#: API tokens: only a SHA-256 of the secret is stored; the token itself is shown once.
api_tokens = Table(
    "api_tokens", metadata,
    Column("token_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", Code, nullable=False),
    Column("work_centers", Json, nullable=False),  # operator tokens: where they may act
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("expires_at", UtcDateTime),  # issue 12: None = never
    Column("last_used_at", UtcDateTime),  # updated at most once a minute
)

#: Operators who identify at a station by badge or PIN (PINs stored as scrypt hashes).
operators = Table(
    "operators", metadata,
    Column("badge", Code, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("pin_hash", String(200)),
    Column("work_centers", Json, nullable=False),
    Column("active", Boolean, nullable=False),
)

#: What the ERP did with each confirmation (pull acks and push results). Confirmations
#: themselves are never edited; their delivery state lives here.
confirmation_deliveries = Table(
    "confirmation_deliveries", metadata,
    Column("confirmation_id", String(36), primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("order_id", Code, nullable=False),
    # retrying | delivered | posted | error | skipped (no row: pending)
    Column("state", Code, nullable=False),
    Column("message", Text),
    Column("attempts", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_confirmation_deliveries_state", "state"),
    # Push mode: the ERP's HTTP status of the last answer, and the supervisor's decision on a
    # delivery error (retry or skip): who, when, why.
    Column("http_status", Integer),
    Column("resolution", Code),
    Column("resolved_by", String(200)),
    Column("resolved_at", UtcDateTime),
    Column("resolution_reason", Text),
)

#: Cursors: how far each consumer (the ERP pull feed, the push worker) has acknowledged.
feed_positions = Table(
    "feed_positions", metadata,
    Column("consumer", Code, primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: High-water marks of the numbers the service hands out (event seq, confirmation cursor,
#: rejection id): written in every batch's transaction, so a number is never handed out twice,
#: even after retention has purged every row that carried it.
high_water = Table(
    "high_water", metadata,
    Column("name", Code, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: Issue 12: the audit trail (logins, failed logins, writes by token, supervisor overrides).
#: Append-only: the code has no UPDATE or DELETE of it; on PostgreSQL a trigger refuses both.
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime, nullable=False),
    Column("kind", Code, nullable=False),  # login | login_failed | write | override | admin
    Column("actor", String(200), nullable=False),  # token name or operator badge
    Column("token_id", String(32)),
    Column("work_center", Code),
    Column("detail", Json, nullable=False),
    Index("ix_audit_log_ts", "ts"),
)

#: Alerts (issue 11): one row per raise; active while cleared_at is NULL. The dedupe key names
#: the condition (kind + subject), so a condition still true is never raised twice.
alerts = Table(
    "alerts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("dedupe_key", String(300), nullable=False),
    Column("kind", Code, nullable=False),
    Column("severity", Code, nullable=False),  # info | warning | error
    Column("work_center", Code),
    Column("subject", String(200)),
    Column("message", Text, nullable=False),
    Column("details", Json, nullable=False),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("cleared_at", UtcDateTime),
    Column("acked_by", String(200)),
    Column("acked_at", UtcDateTime),
    Column("acked_station", Code),  # the station tablet it was acknowledged at (0010)
    # Severity changes while active (0011): when it last rose, and every change with the
    # acknowledgement it superseded ([{"at", "from", "to", "acked_by", ...}], NULL: none).
    Column("escalated_at", UtcDateTime),
    Column("severity_changes", Json),
    Index("ix_alerts_dedupe_key", "dedupe_key"),
    Index("ix_alerts_cleared_at", "cleared_at"),
)

#: Durable outbox of alert webhooks: written in the alert's transaction, delivered in id order
#: per destination, retried until the receiver answers 2xx (never dropped).
alert_webhooks = Table(
    "alert_webhooks", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("destination", Code, nullable=False),
    Column("message_id", String(64), nullable=False, unique=True),  # the webhook-id header
    Column("payload", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", UtcDateTime),
    Index("ix_alert_webhooks_destination", "destination", "delivered_at"),
)

#: The machine-state timeline (issue 11): one row per stretch of one state of a work center,
#: non-overlapping, keyed by its start; `end` NULL while open. Stops carry their downtime's id,
#: reason and who gave it. Written by the dispatcher with the events that make it.
state_intervals = Table(
    "state_intervals", metadata,
    Column("work_center", Code, primary_key=True),
    Column("start", UtcDateTime, primary_key=True),
    Column("end", UtcDateTime),
    Column("state", Code, nullable=False),
    Column("source", Code, nullable=False),  # machine | operation
    Column("downtime_id", Id),
    Column("reason", String(200)),
    Column("reason_by", String(200)),
    Column("updated_seq", BigInteger, nullable=False),
    Index("ix_state_intervals_downtime_id", "downtime_id"),
    Index("ix_state_intervals_end", "end"),
)

#: OEE rollups (issue 11): times (microseconds, inside planned time unless said) and counts per
#: work center per 15 minutes (UTC-aligned), added to by the dispatcher in the event's
#: transaction, so a 30-day OEE query reads these instead of raw events.
oee_buckets = Table(
    "oee_buckets", metadata,
    Column("work_center", Code, primary_key=True),
    Column("bucket_start", UtcDateTime, primary_key=True),
    *(Column(name, BigInteger, nullable=False) for name in (
        "running_us", "outside_run_us", "micro_us", "setup_us", "stops_us", "planned_stops_us",
        "unknown_us", "good", "scrap", "units_without_ideal", "ideal_us", "scrap_ideal_us")),
    Index("ix_oee_buckets_bucket_start", "bucket_start"),
)

#: WIP snapshots (issue 14): the whole state right after event `seq`, built by replaying the log
#: (snapshot + the events after it). `db verify` starts from the newest; retention purges only
#: events a snapshot covers.
wip_snapshots = Table(
    "wip_snapshots", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("taken_at", UtcDateTime, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("state", Json, nullable=False),
)
# Retention (issue 14) finds old rows by commit time.
Index("ix_events_committed_at", events.c.committed_at)
Index("ix_events_work_center_seq", events.c.work_center, events.c.seq)
Index("ix_rejected_events_rejected_at", rejected_events.c.rejected_at)
