"""OEE benchmark (issue 11): rollup queries against a plain SQL aggregate over the raw rows.

    python -m benchmarks.oee [--quick] [--pg-url URL] [--work-centers N] [--days D]

A plant of 50 work centers (--quick: 20) runs for 30 days (--quick: 7): per work center a state
change every 2 minutes and a count event every 10 seconds on average (random gaps of 0.5x to
1.5x the mean, seeded). Every event goes through the real dispatcher (timeline and 15-minute
rollups written in the event's transaction), on SQLite and on PostgreSQL (a throwaway server on
a free port unless --pg-url). The same state changes and counts also go into two plain tables
(bench_states, bench_counts, indexed on work center + time).

Then, per work center (the first one) and for the plant, for a shift (8 h), a day and the whole
span (30 days; 7 with --quick): the time of the OEE report (`store.oee_report.report`: reads the
rollups and the open spans, never the raw events) and of a plain SQL aggregate over the raw rows
(run time by a window over the state changes, good and scrap summed) answering the same
question. Medians of 3 runs. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, text

from mes_edge.dispatcher import Dispatcher, Status
from mes_edge.domain import (
    ConfirmationPolicy,
    CountingSource,
    Event,
    MachineState,
    MachineStateChanged,
    PlantRules,
    QuantityReported,
)
from mes_edge.domain.progress import ProgressRules, WorkCenterPlan
from mes_edge.store import Store
from mes_edge.store.oee_report import report

START = datetime(2025, 3, 1, tzinfo=UTC)
STATE_MEAN_S = 120.0
COUNT_MEAN_S = 10.0
#: Running most of the time, like a line: the next state after a stop is running.
STOPS = (MachineState.IDLE, MachineState.DOWN, MachineState.SETUP, MachineState.BLOCKED)

raw = MetaData()
bench_states = Table("bench_states", raw, Column("wc", String(40), nullable=False),
                     Column("ts_s", Float, nullable=False), Column("state", String(16)),
                     Index("ix_bench_states", "wc", "ts_s"))
bench_counts = Table("bench_counts", raw, Column("wc", String(40), nullable=False),
                     Column("ts_s", Float, nullable=False), Column("good", Integer),
                     Column("scrap", Integer), Index("ix_bench_counts", "wc", "ts_s"))


def plant(work_centers: int) -> tuple[list[str], PlantRules, ProgressRules]:
    wcs = [f"WC-{i:02d}" for i in range(work_centers)]
    rules = PlantRules(work_centers=dict.fromkeys(wcs, CountingSource.MACHINE),
                       policy=ConfirmationPolicy(every_units=None))
    # No calendar: planned around the clock, so "a shift" is any 8 h on 15-minute bounds.
    progress = ProgressRules({w: WorkCenterPlan(micro_stop_s=60, ideal_cycle_s=4.0)
                              for w in wcs})
    return wcs, rules, progress


def hour_of_events(wcs: list[str], hour: int, rng: random.Random,
                   nxt: dict[tuple[str, str], float], current: dict[str, MachineState],
                   ) -> tuple[list[Event], list[dict[str, Any]], list[dict[str, Any]]]:
    """The events of one hour of the plant in time order, and the same as raw rows."""
    end = (hour + 1) * 3600.0
    timed: list[tuple[float, int, Event]] = []
    states: list[dict[str, Any]] = []
    counted: list[dict[str, Any]] = []
    base = START.timestamp()
    for w in wcs:
        while nxt[(w, "state")] < end:
            t = nxt[(w, "state")]
            s = (rng.choice(STOPS) if current[w] is MachineState.RUNNING
                 else MachineState.RUNNING)
            current[w] = s
            ts = START + timedelta(seconds=t)
            timed.append((t, len(timed), MachineStateChanged(
                event_id=f"{w}/s/{t:.3f}", work_center=w, state=s, source="bench",
                source_ts=ts)))
            states.append({"wc": w, "ts_s": base + t, "state": s.value})
            nxt[(w, "state")] = t + STATE_MEAN_S * rng.uniform(0.5, 1.5)
        while nxt[(w, "count")] < end:
            t = nxt[(w, "count")]
            good, scrap = rng.randint(1, 3), (1 if rng.random() < 0.03 else 0)
            timed.append((t, len(timed), QuantityReported(
                event_id=f"{w}/c/{t:.3f}", work_center=w, by=CountingSource.MACHINE, good=good,
                scrap={"bench": scrap} if scrap else {}, source="bench",
                source_ts=START + timedelta(seconds=t))))
            counted.append({"wc": w, "ts_s": base + t, "good": good, "scrap": scrap})
            nxt[(w, "count")] = t + COUNT_MEAN_S * rng.uniform(0.5, 1.5)
    timed.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in timed], states, counted


async def fill(url: str, wcs: list[str], rules: PlantRules, progress: ProgressRules,
               days: int) -> tuple[Store, dict[str, float]]:
    """Every event through the real dispatcher (and the raw tables); the store stays open."""
    store = await Store.open(url)
    async with store.engine.begin() as conn:
        await conn.run_sync(raw.create_all)
    d = Dispatcher(store, rules, progress=progress)
    await d.start()
    rng = random.Random(11)
    nxt = {(w, k): rng.uniform(0, m) for w in wcs
           for k, m in (("state", STATE_MEAN_S), ("count", COUNT_MEAN_S))}
    current = dict.fromkeys(wcs, MachineState.UNKNOWN)
    n = 0
    t0 = time.perf_counter()
    try:
        futures: list[asyncio.Future[Any]] = []
        for hour in range(days * 24):
            events, states, counted = hour_of_events(wcs, hour, rng, nxt, current)
            for i in range(0, len(events), 200):  # the bounded queue makes us wait when full
                futures.extend(await d.submit_many(events[i:i + 200]))
            async with store.engine.begin() as conn:
                await conn.execute(bench_states.insert(), states)
                await conn.execute(bench_counts.insert(), counted)
            n += len(events)
            if hour % 6 == 5 or hour == days * 24 - 1:  # settle a few hours at a time
                outcomes = await asyncio.gather(*futures)
                futures.clear()
                bad = [o for o in outcomes if o.status != Status.ACCEPTED]
                if bad:
                    raise RuntimeError(f"{len(bad)} events not accepted, first: {bad[0]}")
    finally:
        await d.stop()
    elapsed = time.perf_counter() - t0
    return store, {"events": n, "fill_s": round(elapsed, 1),
                   "fill_events_per_s": round(n / elapsed)}


def _baseline_sql(dialect: str, plant_wide: bool) -> str:
    least, greatest = ("min", "max") if dialect == "sqlite" else ("least", "greatest")
    where = "" if plant_wide else "WHERE wc = :wc"
    return f"""
        WITH s AS (
            SELECT state, ts_s, LEAD(ts_s) OVER (PARTITION BY wc ORDER BY ts_s) AS nxt
            FROM bench_states {where}
        )
        SELECT
            (SELECT SUM({least}(COALESCE(nxt, :now), :hi) - {greatest}(ts_s, :lo)) FROM s
             WHERE state = 'running' AND ts_s < :hi AND COALESCE(nxt, :now) > :lo) AS run_s,
            (SELECT SUM(good) FROM bench_counts
             WHERE {'' if plant_wide else 'wc = :wc AND '}ts_s >= :lo AND ts_s < :hi) AS good,
            (SELECT SUM(scrap) FROM bench_counts
             WHERE {'' if plant_wide else 'wc = :wc AND '}ts_s >= :lo AND ts_s < :hi) AS scrap
    """


async def _median_ms(fn: Callable[[], Awaitable[Any]], runs: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = await fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1), out


async def queries(store: Store, wcs: list[str], progress: ProgressRules, days: int
                  ) -> dict[str, Any]:
    """Rollup report vs raw aggregate, per work center and plant, shift / day / whole span."""
    end = START + timedelta(days=days)
    spans = {"shift": (end - timedelta(hours=16), end - timedelta(hours=8)),
             "day": (end - timedelta(days=1), end), f"{days}d": (START, end)}
    dialect = store.engine.dialect.name
    out: dict[str, Any] = {}
    for scope, members in (("wc", wcs[:1]), ("plant", wcs)):
        for name, (lo, hi) in spans.items():
            whole = scope == "plant"

            async def rollup(lo: datetime = lo, hi: datetime = hi, members: list[str] = members,
                             whole: bool = whole) -> list[dict[str, Any]]:
                return await report(store, progress, members, lo, hi, None, end, plant=whole)

            ms, rows = await _median_ms(rollup)
            sql = text(_baseline_sql(dialect, scope == "plant"))
            params = {"lo": lo.timestamp(), "hi": hi.timestamp(), "now": end.timestamp(),
                      "wc": members[0]}

            async def base(sql: Any = sql, params: dict[str, Any] = params) -> Any:
                async with store.engine.connect() as conn:
                    return (await conn.execute(sql, params)).one()

            base_ms, b = await _median_ms(base)
            r = rows[0]
            # Same question, same answer: run time and counts agree with the raw rows.
            if r["good"] != int(b.good or 0) or r["scrap"] != int(b.scrap or 0):
                raise RuntimeError(f"{scope} {name}: rollups {r['good']}/{r['scrap']} != raw "
                                   f"{b.good}/{b.scrap}")
            if abs(r["run_time_min"] * 60 - float(b.run_s or 0)) > 1.0:
                raise RuntimeError(f"{scope} {name}: run time {r['run_time_min']} min != raw "
                                   f"{float(b.run_s or 0) / 60:.3f} min")
            out[f"{scope}_{name}_rollup_ms"] = ms
            out[f"{scope}_{name}_raw_sql_ms"] = base_ms
    return out


async def one_database(url: str, work_centers: int, days: int) -> dict[str, Any]:
    wcs, rules, progress = plant(work_centers)
    store, filled = await fill(url, wcs, rules, progress, days)
    try:
        async with store.engine.connect() as conn:
            buckets = (await conn.execute(text("SELECT COUNT(*) FROM oee_buckets"))).scalar()
            spans = (await conn.execute(text("SELECT COUNT(*) FROM state_intervals"))).scalar()
        return {**filled, "oee_buckets": buckets, "state_intervals": spans,
                **await queries(store, wcs, progress, days)}
    finally:
        await store.close()


async def run(work_centers: int, days: int, pg_url: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "oee", "work_centers": work_centers, "days": days,
                              "state_change_every_s": STATE_MEAN_S,
                              "count_every_s": COUNT_MEAN_S}
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = await one_database(f"sqlite+aiosqlite:///{tmp}/oee.db",
                                              work_centers, days)
    pg_server = None
    if pg_url is None:
        from tests.servers import PostgresServer

        pg_server = PostgresServer()
        pg_server.start()
        pg_url = pg_server.create_database("oee")
    try:
        result["postgresql"] = await one_database(pg_url, work_centers, days)
    except Exception as exc:  # reported, not hidden: the SQLite figures still stand
        result["postgresql"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    finally:
        if pg_server is not None:
            pg_server.stop()
    return result


def main() -> None:
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 work centers over 7 days")
    p.add_argument("--work-centers", type=int, default=None, help="override (default 50)")
    p.add_argument("--days", type=int, default=None, help="override (default 30)")
    p.add_argument("--pg-url", default=None, help="an empty PostgreSQL database to fill")
    args = p.parse_args()
    wcs = args.work_centers or (20 if args.quick else 50)
    days = args.days or (7 if args.quick else 30)
    result = asyncio.run(run(wcs, days, args.pg_url))
    for db in ("sqlite", "postgresql"):
        r = result[db]
        if "error" in r:
            print(f"{db}: failed: {r['error']}")
            continue
        print(f"{db}: {r['events']} events in {r['fill_s']} s "
              f"({r['fill_events_per_s']}/s), {r['oee_buckets']} buckets")
        for k, v in r.items():
            if k.endswith("_ms"):
                print(f"  {k}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
