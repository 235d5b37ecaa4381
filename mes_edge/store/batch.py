"""What one dispatcher batch hands the store, and the ONE definition of how it is written.

The dispatcher decides (events logged, refusals, the orders, work centers, downtimes, counter
checkpoints and confirmations the batch changed); the store turns those decisions into rows
here. `WRITES` is the single list of the batch's statements: their order (one that keeps every
constraint satisfied), their upsert keys and the row codec of each. Both write paths use it:
SQLAlchemy Core (PostgreSQL, tools) via `batch_statements`, and the raw SQLite path of the
writer thread (sqlite_raw), which derives its SQL and conversions from the same entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, null, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from mes_edge.domain import (
    Checkpoint,
    Confirmation,
    Downtime,
    Event,
    WorkCenterState,
    WorkOrder,
    event_to_json,
)
from mes_edge.store import codec
from mes_edge.store.tables import (
    confirmations,
    counter_checkpoints,
    downtimes,
    events,
    high_water,
    oee_buckets,
    operations,
    rejected_events,
    state_intervals,
    work_centers,
    work_orders,
)

#: How an id was settled before: None when it was logged (accepted or unchanged), else the
#: refusal's (reason_code, reason), so a resend meets the same verdict.
Verdict = tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused event or raw input, as the batch decided it (one rejected_events row)."""

    id: int
    source: str
    reason_code: str
    reason: str
    payload: Any
    received_ts: datetime | None
    event_id: str | None = None
    type: str | None = None
    work_center: str | None = None
    order_id: str | None = None
    actor: str | None = None


@dataclass
class BatchWrite:
    """Everything one group commit decided, as domain objects; the store makes the rows."""

    committed_at: datetime | None = None
    #: (seq, event) of every logged event, in commit order.
    event_log: list[tuple[int, Event]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    #: Each changed order / work center / downtime with the seq of the event that changed it last.
    orders: list[tuple[WorkOrder, int]] = field(default_factory=list)
    work_centers: list[tuple[WorkCenterState, int]] = field(default_factory=list)
    downtimes: list[tuple[Downtime, int]] = field(default_factory=list)
    #: Counter checkpoints the batch settled, all stamped with `checkpoint_seq`.
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_seq: int = 0
    #: (cursor, confirmation) of every new confirmation.
    confirmations: list[tuple[int, Confirmation]] = field(default_factory=list)
    #: The numbers this batch handed out (never reused): event_seq, confirmation_cursor, ...
    high_water: dict[str, int] = field(default_factory=dict)
    #: Issue 11 (store/progress.py makes them): state_intervals rows to upsert, and oee_buckets
    #: rows whose values are ADDED to the stored ones.
    state_intervals: list[dict[str, Any]] = field(default_factory=list)
    oee_buckets: list[dict[str, Any]] = field(default_factory=list)
    #: Where those rows are, by (work center, start) - kept by store.progress.add_rows, so a
    #: batch with a row per event does not scan its rows for every event.
    span_index: dict[tuple[str, datetime], int] = field(
        default_factory=dict, repr=False, compare=False)
    bucket_index: dict[tuple[str, datetime], dict[str, Any]] = field(
        default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.event_log or self.refusals or self.checkpoints)


def event_row(seq: int, event: Event, committed_at: datetime | None) -> dict[str, Any]:
    """The events-table row of one logged event."""
    return {
        "seq": seq, "event_id": event.event_id, "type": event.kind,
        "work_center": event.work_center_ref, "order_id": event.order_ref,
        "source": event.source, "actor": event.actor, "source_ts": event.source_ts,
        "received_ts": event.received_ts, "committed_at": committed_at,
        "payload": event_to_json(event),
    }


def _events(b: BatchWrite) -> list[dict[str, Any]]:
    return [event_row(seq, e, b.committed_at) for seq, e in b.event_log]


def _refusals(b: BatchWrite) -> list[dict[str, Any]]:
    return [{"id": r.id, "event_id": r.event_id, "type": r.type, "work_center": r.work_center,
             "order_id": r.order_id, "source": r.source, "actor": r.actor,
             "reason_code": r.reason_code, "reason": r.reason, "payload": r.payload,
             "received_ts": r.received_ts, "rejected_at": b.committed_at}
            for r in b.refusals]


def _operations(b: BatchWrite) -> list[dict[str, Any]]:
    return [row for order, seq in b.orders for row in codec.operation_rows(order, seq)]


def _checkpoints(b: BatchWrite) -> list[dict[str, Any]]:
    return [{"device": cp.device, "tag": cp.tag, "value": cp.value,
             "generation": cp.generation, "updated_seq": b.checkpoint_seq}
            for cp in b.checkpoints]


@dataclass(frozen=True, slots=True)
class TableWrite:
    """One statement of a batch: INSERT (or upsert on `upsert_keys`) of the rows `rows` makes."""

    table: Table
    rows: Callable[[BatchWrite], list[dict[str, Any]]]
    upsert_keys: tuple[str, ...] = ()
    #: INSERT ... ON CONFLICT DO NOTHING (a refusal recorded before stays as it was).
    ignore_conflicts: bool = False
    #: Upsert that adds the new values to the stored ones (rollup counters).
    accumulate: bool = False


#: The statements of a batch, in an order that keeps every constraint satisfied.
WRITES: tuple[TableWrite, ...] = (
    TableWrite(events, _events),
    TableWrite(rejected_events, _refusals, ignore_conflicts=True),
    TableWrite(work_orders, lambda b: [codec.order_row(o, seq) for o, seq in b.orders],
               ("order_id",)),
    TableWrite(operations, _operations, ("order_id", "op_no")),
    TableWrite(work_centers, lambda b: [codec.wc_row(wc, seq) for wc, seq in b.work_centers],
               ("work_center",)),
    TableWrite(downtimes, lambda b: [codec.downtime_row(d, seq) for d, seq in b.downtimes],
               ("downtime_id",)),
    TableWrite(counter_checkpoints, _checkpoints, ("device", "tag")),
    TableWrite(high_water, lambda b: [{"name": k, "value": v} for k, v in b.high_water.items()],
               ("name",)),
    TableWrite(confirmations, lambda b: [codec.confirmation_row(c, cursor, b.committed_at)
                                         for cursor, c in b.confirmations]),
    TableWrite(state_intervals, lambda b: b.state_intervals, ("work_center", "start")),
    TableWrite(oee_buckets, lambda b: b.oee_buckets, ("work_center", "bucket_start"),
               accumulate=True),
)


def dialect_insert(dialect: str, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT (PostgreSQL's or SQLite's)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def core_statement(write: TableWrite, dialect: str) -> Any:
    """The SQLAlchemy Core statement of one TableWrite for `dialect`."""
    table = write.table
    if not write.upsert_keys and not write.ignore_conflicts:
        return table.insert()
    stmt = dialect_insert(dialect, table)
    if write.ignore_conflicts:
        return stmt.on_conflict_do_nothing()
    keys = write.upsert_keys
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: (c + stmt.excluded[c.name]) if write.accumulate else stmt.excluded[c.name]
              for c in table.columns if c.name not in keys})


def batch_statements(dialect: str, b: BatchWrite) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """The Core statements of one batch with their rows, in WRITES' order."""
    for write in WRITES:
        rows = write.rows(b)
        if rows:
            yield core_statement(write, dialect), rows


def known_ids_statements(ids: Sequence[str]) -> Iterator[Any]:
    """SELECTs finding which ids were settled before (event log or refused), 500 at a time.

    Rows are (event_id, reason_code, reason); the codes are NULL for logged events."""
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        yield union_all(
            select(events.c.event_id, null().label("reason_code"), null().label("reason"))
            .where(events.c.event_id.in_(chunk)),
            select(rejected_events.c.event_id, rejected_events.c.reason_code,
                   rejected_events.c.reason).where(rejected_events.c.event_id.in_(chunk)))


def verdict(row: Any) -> Verdict:
    """The Verdict of a row of known_ids_statements."""
    return None if row[1] is None else (str(row[1]), str(row[2]))
