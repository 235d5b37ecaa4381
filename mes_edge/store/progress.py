"""Rows and reads of the machine-state timeline and the OEE rollups (issue 11).

The dispatcher's decisions become rows here (`add_rows`); the API reads spans and bucket sums
through the functions below (it imports no SQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from mes_edge.domain.model import MachineState
from mes_edge.domain.progress import COLUMNS, BucketTotals, ProgressDelta, StateSpan
from mes_edge.store.batch import BatchWrite
from mes_edge.store.repository import Store
from mes_edge.store.tables import oee_buckets, state_intervals


def span_row(span: StateSpan, seq: int) -> dict[str, Any]:
    """The state_intervals row of a span."""
    return {"work_center": span.work_center, "start": span.start, "end": span.end,
            "state": span.state.value, "source": span.source, "downtime_id": span.downtime_id,
            "reason": span.reason, "reason_by": span.reason_by, "updated_seq": seq}


def add_rows(b: BatchWrite, delta: ProgressDelta, seq: int) -> None:
    """Put a decision's timeline spans and rollup totals into the batch (same transaction).

    A span written twice in one batch keeps its last version; bucket totals of one key are
    summed before they are added to the stored ones."""
    if delta.spans:
        index = {(r["work_center"], r["start"]): i for i, r in enumerate(b.state_intervals)}
        for span in delta.spans:
            row = span_row(span, seq)
            i = index.get((span.work_center, span.start))
            if i is None:
                index[(span.work_center, span.start)] = len(b.state_intervals)
                b.state_intervals.append(row)
            else:
                b.state_intervals[i] = row
    if delta.buckets:
        at = {(r["work_center"], r["bucket_start"]): r for r in b.oee_buckets}
        for (wc, start), t in delta.buckets.items():
            if (wc, start) not in at:
                at[(wc, start)] = {"work_center": wc, "bucket_start": start,
                                   **dict.fromkeys(COLUMNS, 0)}
                b.oee_buckets.append(at[(wc, start)])
            row = at[(wc, start)]
            for name, value in t.as_row().items():
                row[name] += value


def span_of(row: Any) -> StateSpan:
    """A state_intervals row as a StateSpan."""
    return StateSpan(work_center=row.work_center, start=row.start, end=row.end,
                     state=MachineState(row.state), source=row.source,
                     downtime_id=row.downtime_id, reason=row.reason, reason_by=row.reason_by)


async def spans(store: Store, start: datetime, end: datetime, *,
                work_centers: Iterable[str] | None = None, stops_only: bool = False,
                limit: int = 10_000) -> list[StateSpan]:
    """Spans overlapping [start, end) (open ones included), oldest first."""
    t = state_intervals
    query = (select(t).where(t.c.start < end, or_(t.c.end.is_(None), t.c.end > start))
             .order_by(t.c.start, t.c.work_center).limit(limit))
    if work_centers is not None:
        query = query.where(t.c.work_center.in_(list(work_centers)))
    if stops_only:
        query = query.where(t.c.state.notin_([MachineState.RUNNING.value,
                                              MachineState.UNKNOWN.value]))
    async with store.engine.connect() as conn:
        return [span_of(r) for r in (await conn.execute(query)).all()]


async def open_spans(store: Store) -> list[StateSpan]:
    """The open span of every work center that has one."""
    t = state_intervals
    async with store.engine.connect() as conn:
        return [span_of(r) for r in (await conn.execute(select(t).where(t.c.end.is_(None)))).all()]


async def span_by_downtime(store: Store, downtime_id: str) -> StateSpan | None:
    """The timeline span of a downtime, or None."""
    t = state_intervals
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(t).where(t.c.downtime_id == downtime_id))).first()
    return None if row is None else span_of(row)


@dataclass(frozen=True, slots=True)
class BucketRow:
    """Rollup totals of one bucket (summed over the work centers asked for)."""

    work_center: str | None
    bucket_start: datetime
    totals: BucketTotals


async def bucket_sums(store: Store, start: datetime, end: datetime, *,
                      work_center: str | None = None) -> list[BucketRow]:
    """Rollup totals per bucket in [start, end): of one work center, or of all summed."""
    t = oee_buckets
    sums = [func.sum(t.c[name]).label(name) for name in COLUMNS]
    cond = and_(t.c.bucket_start >= start, t.c.bucket_start < end)
    if work_center is not None:
        cond = and_(cond, t.c.work_center == work_center)
    query = (select(t.c.bucket_start, *sums).where(cond).group_by(t.c.bucket_start)
             .order_by(t.c.bucket_start))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [BucketRow(work_center, r.bucket_start,
                      BucketTotals(*(int(getattr(r, n) or 0) for n in COLUMNS))) for r in rows]


async def stored_progress(store: Store) -> tuple[list[StateSpan], dict[tuple[str, datetime],
                                                                      BucketTotals]]:
    """Every stored span and bucket (for `db verify`: compare with a replay)."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(state_intervals).order_by(
            state_intervals.c.work_center, state_intervals.c.start))).all()
        buckets = (await conn.execute(select(oee_buckets))).all()
    return ([span_of(r) for r in rows],
            {(b.work_center, b.bucket_start): BucketTotals(*(int(getattr(b, n)) for n in COLUMNS))
             for b in buckets})
