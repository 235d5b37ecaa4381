"""Rows and reads of the machine-state timeline and the OEE rollups (issue 11).

The dispatcher's decisions become rows here (`add_rows`); the API reads spans and bucket sums
through the functions below (it imports no SQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, union_all

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


def _indexes(b: BatchWrite) -> tuple[dict[tuple[str, datetime], int],
                                     dict[tuple[str, datetime], dict[str, Any]]]:
    """The batch's row indexes, rebuilt if rows were put in some other way."""
    if len(b.span_index) != len(b.state_intervals):
        b.span_index = {(r["work_center"], r["start"]): i
                        for i, r in enumerate(b.state_intervals)}
    if len(b.bucket_index) != len(b.oee_buckets):
        b.bucket_index = {(r["work_center"], r["bucket_start"]): r for r in b.oee_buckets}
    return b.span_index, b.bucket_index


def add_rows(b: BatchWrite, delta: ProgressDelta, seq: int) -> None:
    """Put a decision's timeline spans and rollup totals into the batch (same transaction).

    A span written twice in one batch keeps its last version; bucket totals of one key are
    summed before they are added to the stored ones."""
    if not delta.spans and not delta.buckets:
        return
    index, at = _indexes(b)
    for span in delta.spans:
        row = span_row(span, seq)
        key = (span.work_center, span.start)
        i = index.get(key)
        if i is None:
            index[key] = len(b.state_intervals)
            b.state_intervals.append(row)
        else:
            b.state_intervals[i] = row
    for key, t in delta.buckets.items():
        totals = at.get(key)
        if totals is None:
            totals = at[key] = {"work_center": key[0], "bucket_start": key[1],
                                **dict.fromkeys(COLUMNS, 0)}
            b.oee_buckets.append(totals)
        for name in COLUMNS:
            totals[name] += getattr(t, name)


_STATES = {m.value: m for m in MachineState}  # a dict lookup: MachineState(x) is slower


def span_of(row: Any) -> StateSpan:
    """A state_intervals row as a StateSpan."""
    return StateSpan(work_center=row.work_center, start=row.start, end=row.end,
                     state=_STATES.get(row.state) or MachineState(row.state), source=row.source,
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


#: Work centers per statement of `timelines` / `window_totals` (SQLite: at most 500 UNION terms).
_PER_STATEMENT = 100


def _in_window(wc: str, lo: datetime, hi: datetime) -> Any:
    """Spans of `wc` overlapping [lo, hi), as a range of the primary key (work center, start):
    a timeline's spans do not overlap, so the first one reaching into the window is the latest
    that starts at or before lo. (Without that lower bound a window at the end of a long
    timeline scans it from its beginning.)"""
    t = state_intervals
    before = state_intervals.alias()
    first = (select(func.max(before.c.start))
             .where(before.c.work_center == wc, before.c.start <= lo).scalar_subquery())
    return and_(t.c.work_center == wc, t.c.start >= func.coalesce(first, lo), t.c.start < hi,
                or_(t.c.end.is_(None), t.c.end > lo))


async def _union(conn: Any, parts: list[Any]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(parts), _PER_STATEMENT):
        chunk = parts[i:i + _PER_STATEMENT]
        query: Any = chunk[0] if len(chunk) == 1 else union_all(chunk[0], *chunk[1:])
        result = await conn.execute(query)
        rows.extend(result.all())
    return rows


@dataclass
class TimelineRead:
    """What `timelines` read of one work center's window."""

    #: (span, updated_seq) of the spans in the window changed after the seq asked for.
    changed: list[tuple[StateSpan, int]]
    #: How many spans the window holds in all.
    total: int


async def timelines(store: Store, windows: Mapping[str, tuple[datetime, datetime, int]]
                    ) -> dict[str, TimelineRead]:
    """Per work center (lo, hi, after): the spans overlapping [lo, hi) (open ones included)
    written after event seq `after` (0: all), and how many the window holds in all; every work
    center of `windows` is a key. Two statements for many work centers (the counts, then the
    spans), each part an index range.

    A reader that keeps what it read before asks only for what changed since: spans are upserted
    with the seq of the event that changed them and never deleted inside a live window, so its
    copy plus the changes is the window, as long as the counts agree (they say when not: a
    write between the two statements, a span that was outside the window before)."""
    t = state_intervals
    live = {wc: w for wc, w in windows.items() if w[0] < w[1]}
    out = {wc: TimelineRead([], 0) for wc in windows}
    async with store.engine.connect() as conn:
        counts = await _union(conn, [
            select(literal(wc).label("wc"), func.count().label("n")).select_from(t)
            .where(_in_window(wc, lo, hi)) for wc, (lo, hi, _) in live.items()])
        for r in counts:
            out[r.wc].total = int(r.n)
        for r in await _union(conn, [
                select(t).where(_in_window(wc, lo, hi), t.c.updated_seq > after)
                for wc, (lo, hi, after) in live.items()]):
            out[r.work_center].changed.append((span_of(r), int(r.updated_seq)))
    return out


async def window_totals(store: Store, windows: Mapping[str, tuple[datetime, datetime]]
                        ) -> dict[str, BucketTotals]:
    """Per work center, its rollup totals summed over the buckets starting in its window
    [lo, hi) (every work center of `windows` is a key); one statement for many work centers,
    each part an index range, summed in SQL."""
    out = {wc: BucketTotals() for wc in windows}
    t = oee_buckets
    sums = [func.coalesce(func.sum(t.c[name]), 0).label(name) for name in COLUMNS]
    parts = [select(literal(wc).label("wc"), *sums).where(
                 t.c.work_center == wc, t.c.bucket_start >= lo, t.c.bucket_start < hi)
             for wc, (lo, hi) in windows.items() if lo < hi]
    async with store.engine.connect() as conn:
        for r in await _union(conn, parts):
            out[r.wc] = BucketTotals(*(int(getattr(r, n)) for n in COLUMNS))
    return out


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
