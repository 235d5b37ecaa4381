"""Filling the OEE benchmark's plant (issue 11): through the dispatcher, or its batch code directly.

Two ways to put the same events into a fresh database, both writing what the service writes:

- `fill_dispatcher`: every event through a running `Dispatcher` (`submit_many`, its bounded
  queue, its group commits of up to 1,000 events). This is the service's own path and the
  reference.
- `fill_direct`: the same code without the queue: the dispatcher's `BatchBuilder` decides each
  batch (domain `apply`, `progress.record`, `store.progress.add_rows`, the same rows), and
  `Store.commit_batch` writes it through `store/batch.py`'s `WRITES` (the raw SQLite writer
  thread, or SQLAlchemy Core on PostgreSQL) - the dedup lookup included, which must find none of
  the ids. What it saves is the per-event futures and queue hops, and it overlaps deciding the
  next batch (a worker thread) with committing the previous one. Batches are larger (a commit's
  fixed cost is paid less often); the stored rows do not depend on where batches are cut: a
  timeline span written twice keeps its last version, bucket totals add up, and every row keeps
  the seq of the event that changed it last (`committed_at` is the only column that differs).

`same_rows` fills a small plant both ways and compares every table the batch writes, so the
direct fill is checked against the dispatcher in every run.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, select, text

from mes_edge.dispatcher import Dispatcher, Status
from mes_edge.dispatcher.batch import BatchBuilder
from mes_edge.domain import (
    CountingSource,
    Event,
    MachineState,
    MachineStateChanged,
    MemoryState,
    PlantRules,
    QuantityReported,
)
from mes_edge.domain.progress import ProgressRules
from mes_edge.store import BatchWrite, Store
from mes_edge.store.tables import (
    downtimes,
    events,
    high_water,
    oee_buckets,
    state_intervals,
    work_centers,
)

STATE_MEAN_S = 120.0
COUNT_MEAN_S = 10.0
#: Running most of the time, like a line: the next state after a stop is running.
STOPS = (MachineState.IDLE, MachineState.DOWN, MachineState.SETUP, MachineState.BLOCKED)
#: Events per batch of the direct fill (the dispatcher's own batches are at most 1,000).
DIRECT_BATCH = 5_000

raw = MetaData()
bench_states = Table("bench_states", raw, Column("wc", String(40), nullable=False),
                     Column("ts_s", Float, nullable=False), Column("state", String(16)),
                     Index("ix_bench_states", "wc", "ts_s"))
bench_counts = Table("bench_counts", raw, Column("wc", String(40), nullable=False),
                     Column("ts_s", Float, nullable=False), Column("good", Integer),
                     Column("scrap", Integer), Index("ix_bench_counts", "wc", "ts_s"))

Rows = list[dict[str, Any]]


class Plant:
    """The seeded line: per work center a state change every ~2 min and a count every ~10 s."""

    def __init__(self, wcs: list[str], start: datetime, days: float, seed: int = 11) -> None:
        self.wcs, self.start, self.hours = wcs, start, round(days * 24)
        self.rng = random.Random(seed)
        rng = self.rng
        self.nxt = {(w, k): rng.uniform(0, m) for w in wcs
                    for k, m in (("state", STATE_MEAN_S), ("count", COUNT_MEAN_S))}
        self.current = dict.fromkeys(wcs, MachineState.UNKNOWN)

    def hours_of_events(self) -> Iterator[tuple[list[Event], Rows, Rows]]:
        """Per hour: its events in time order, and the same as raw rows."""
        for hour in range(self.hours):
            yield self.hour(hour)

    def hour(self, hour: int) -> tuple[list[Event], Rows, Rows]:
        end = (hour + 1) * 3600.0
        rng, nxt, current, start = self.rng, self.nxt, self.current, self.start
        timed: list[tuple[float, int, Event]] = []
        states: Rows = []
        counted: Rows = []
        base = start.timestamp()
        for w in self.wcs:
            while nxt[(w, "state")] < end:
                t = nxt[(w, "state")]
                s = (rng.choice(STOPS) if current[w] is MachineState.RUNNING
                     else MachineState.RUNNING)
                current[w] = s
                ts = start + timedelta(seconds=t)
                # received = source time: a PLC read on time, and the rows are reproducible.
                timed.append((t, len(timed), MachineStateChanged(
                    event_id=f"{w}/s/{t:.3f}", work_center=w, state=s, source="bench",
                    source_ts=ts, received_ts=ts)))
                states.append({"wc": w, "ts_s": base + t, "state": s.value})
                nxt[(w, "state")] = t + STATE_MEAN_S * rng.uniform(0.5, 1.5)
            while nxt[(w, "count")] < end:
                t = nxt[(w, "count")]
                good, scrap = rng.randint(1, 3), (1 if rng.random() < 0.03 else 0)
                ts = start + timedelta(seconds=t)
                timed.append((t, len(timed), QuantityReported(
                    event_id=f"{w}/c/{t:.3f}", work_center=w, by=CountingSource.MACHINE,
                    good=good, scrap={"bench": scrap} if scrap else {}, source="bench",
                    source_ts=ts, received_ts=ts)))
                counted.append({"wc": w, "ts_s": base + t, "good": good, "scrap": scrap})
                nxt[(w, "count")] = t + COUNT_MEAN_S * rng.uniform(0.5, 1.5)
        timed.sort(key=lambda x: (x[0], x[1]))
        return [e for _, _, e in timed], states, counted


async def _create_raw(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(raw.create_all)


async def _insert_raw(store: Store, states: Rows, counted: Rows) -> None:
    async with store.engine.begin() as conn:
        if states:
            await conn.execute(bench_states.insert(), states)
        if counted:
            await conn.execute(bench_counts.insert(), counted)


class _Analyze:
    """ANALYZE the event tables on PostgreSQL each time the log doubled.

    A fresh database has no statistics: the planner then takes the events table for small and
    answers the dispatcher's dedup lookup (`event_id IN (500 ids)`) by a sequential scan, which
    grows with the log (0.4 s a batch at 50,000 events). In a running plant autovacuum keeps the
    statistics; a fill this fast outruns it, so the benchmark does what autovacuum would (it
    changes no row)."""

    def __init__(self, store: Store) -> None:
        self.store, self.at = store, 2_000
        self.on = store.engine.dialect.name == "postgresql"

    async def __call__(self, n: int) -> None:
        if self.on and n >= self.at:
            self.at = 2 * n
            async with self.store.engine.connect() as conn:
                await conn.execute(text("ANALYZE events, rejected_events"))
                await conn.commit()


def _rate(n: int, elapsed: float, how: str) -> dict[str, Any]:
    return {"fill": how, "events": n, "fill_s": round(elapsed, 1),
            "fill_events_per_s": round(n / elapsed)}


async def fill_dispatcher(store: Store, plant: Plant, rules: PlantRules,
                          progress: ProgressRules, progress_cb: Callable[[str], None] | None
                          = None) -> dict[str, Any]:
    """Every event through the real dispatcher (and the raw tables)."""
    await _create_raw(store)
    d = Dispatcher(store, rules, progress=progress)
    await d.start()
    analyze = _Analyze(store)
    n = 0
    t0 = time.perf_counter()
    try:
        futures: list[asyncio.Future[Any]] = []
        for hour, (evs, states, counted) in enumerate(plant.hours_of_events()):
            for i in range(0, len(evs), 200):  # the bounded queue makes us wait when full
                futures.extend(await d.submit_many(evs[i:i + 200]))
            await _insert_raw(store, states, counted)
            n += len(evs)
            await analyze(n)
            if hour % 6 == 5 or hour == plant.hours - 1:  # settle a few hours at a time
                outcomes = await asyncio.gather(*futures)
                futures.clear()
                bad = [o for o in outcomes if o.status != Status.ACCEPTED]
                if bad:
                    raise RuntimeError(f"{len(bad)} events not accepted, first: {bad[0]}")
                if progress_cb and hour % 24 == 23:
                    progress_cb(f"day {hour // 24 + 1}: {n} events, "
                                f"{n / (time.perf_counter() - t0):.0f}/s")
    finally:
        await d.stop()
    return _rate(n, time.perf_counter() - t0, "dispatcher")


class _Decider:
    """The dispatcher's decisions, batch after batch, on a state of its own (fresh database)."""

    def __init__(self, rules: PlantRules, progress: ProgressRules) -> None:
        self.rules, self.progress = rules, progress
        self.state = MemoryState()
        self.seq = self.cursor = self.rejection = 0

    def decide(self, batch: list[Event]) -> BatchWrite:
        """What the writer would commit for `batch` (every id new): its BatchWrite. The state
        moves on at once (the next batch is decided while this one commits; a failed commit
        fails the whole fill)."""
        b = BatchBuilder(self.state, self.rules, seq=self.seq, cursor=self.cursor,
                         rejection=self.rejection, known={}, recent={}, progress=self.progress)
        for e in batch:
            outcome = b.add(e)
            if outcome.status != Status.ACCEPTED:
                raise RuntimeError(f"event not accepted: {outcome}")
        rows, _ = b.finish()
        self.state.merge(b.decision)
        self.seq, self.cursor, self.rejection = b.seq, b.cursor, b.rejection
        return rows


async def fill_direct(store: Store, plant: Plant, rules: PlantRules, progress: ProgressRules,
                      batch: int = DIRECT_BATCH,
                      progress_cb: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The dispatcher's batch code without its queue: decide a batch in a worker thread while
    the previous one commits (Store.commit_batch), then the raw tables of that stretch."""
    await _create_raw(store)
    decider = _Decider(rules, progress)
    analyze = _Analyze(store)
    hours = plant.hours_of_events()

    def next_batch() -> tuple[list[Event], BatchWrite, Rows, Rows] | None:
        evs: list[Event] = []
        states: Rows = []
        counted: Rows = []
        for h_events, h_states, h_counted in hours:
            evs += h_events
            states += h_states
            counted += h_counted
            if len(evs) >= batch:
                break
        if not evs:
            return None
        return evs, decider.decide(evs), states, counted

    async def commit(evs: list[Event], rows: BatchWrite, states: Rows, counted: Rows) -> None:
        def build(known: dict[str, Any]) -> tuple[BatchWrite, None]:
            if known:  # a fresh database: the dispatcher would have found nothing either
                raise RuntimeError(f"{len(known)} ids already stored")
            return rows, None
        await store.commit_batch([e.event_id for e in evs], build)
        await _insert_raw(store, states, counted)
        await analyze(decider.seq)

    n = 0
    day = 0
    t0 = time.perf_counter()
    pending: asyncio.Task[None] | None = None
    try:
        while (got := await asyncio.to_thread(next_batch)) is not None:
            if pending is not None:
                await pending
            pending = asyncio.create_task(commit(*got))
            n += len(got[0])
            if progress_cb and got[0][-1].ts >= plant.start + timedelta(days=day + 1):
                day += 1
                progress_cb(f"day {day}: {n} events, {n / (time.perf_counter() - t0):.0f}/s")
    finally:
        if pending is not None:
            await pending
    return _rate(n, time.perf_counter() - t0, f"direct, batches of {batch}")


#: What `same_rows` compares, with the columns that may differ between two fills.
COMPARED = ((events, ("committed_at",)), (state_intervals, ()), (oee_buckets, ()),
            (work_centers, ()), (downtimes, ()), (high_water, ()))


async def _table_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with store.engine.connect() as conn:
        for table, skip in COMPARED:
            cols = [c for c in table.columns if c.name not in skip]
            key = list(table.primary_key.columns) or cols
            rows = (await conn.execute(select(*cols).order_by(*key))).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


async def same_rows(make_plant: Callable[[], Plant], rules: PlantRules,
                    progress: ProgressRules) -> dict[str, Any]:
    """Fill a small plant through the dispatcher and directly (batches cut elsewhere), on
    SQLite; every row of every table the batch writes must be equal."""
    with tempfile.TemporaryDirectory() as tmp:
        a = await Store.open(f"sqlite+aiosqlite:///{tmp}/dispatcher.db")
        b = await Store.open(f"sqlite+aiosqlite:///{tmp}/direct.db")
        try:
            await fill_dispatcher(a, make_plant(), rules, progress)
            await fill_direct(b, make_plant(), rules, progress, batch=777)
            ra, rb = await _table_rows(a), await _table_rows(b)
            async with a.engine.connect() as conn:
                n = (await conn.execute(text("SELECT COUNT(*) FROM events"))).scalar()
        finally:
            await a.close()
            await b.close()
    diff = [name for name in ra if ra[name] != rb[name]]
    if diff:
        first = diff[0]
        bad = next((x, y) for x, y in zip(ra[first], rb[first], strict=False) if x != y) \
            if len(ra[first]) == len(rb[first]) else (len(ra[first]), len(rb[first]))
        raise RuntimeError(f"direct fill differs from the dispatcher in {diff}: {bad}")
    return {"events": n, "rows": {k: len(v) for k, v in ra.items()}, "equal": True}


async def compare_fills(urls: Callable[[int], str], make_plant: Callable[[], Plant],
                        rules: PlantRules, progress: ProgressRules, rounds: int = 2
                        ) -> dict[str, list[dict[str, Any]]]:
    """The same plant filled alternately through the dispatcher and directly, `rounds` times
    each, into fresh databases (`urls(i)`): events per second of wall time and per CPU second
    of this process (on SQLite the database's work is in it; on PostgreSQL the server's is not).
    """
    out: dict[str, list[dict[str, Any]]] = {"dispatcher": [], "direct": []}
    i = 0
    for _ in range(rounds):
        for how, fill in (("dispatcher", fill_dispatcher), ("direct", fill_direct)):
            store = await Store.open(urls(i))
            i += 1
            try:
                c0 = time.process_time()
                r = await fill(store, make_plant(), rules, progress)
                cpu = time.process_time() - c0
            finally:
                await store.close()
            out[how].append({"events": r["events"], "events_per_s": r["fill_events_per_s"],
                             "events_per_cpu_s": round(r["events"] / max(cpu, 1e-9))})
    return out
