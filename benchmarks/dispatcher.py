"""Dispatcher benchmark: committed events/s, enqueue-to-commit latency, and the sqlite3 ceiling.

    python -m benchmarks.dispatcher [--quick] [--pg-url URL]

Without --pg-url a throwaway PostgreSQL is started on a free port (Debian's binaries).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mes_edge.dispatcher import Dispatcher, Status
from mes_edge.domain import (
    Checkpoint,
    ConfirmationPolicy,
    CountingSource,
    Event,
    OperationAction,
    OperationCommand,
    OperationSpec,
    OrderReceived,
    OrderSpec,
    PlantRules,
    QuantityReported,
    event_to_json,
)
from mes_edge.store import Store

RULES = PlantRules(work_centers={"PRESS-01": CountingSource.MACHINE},
                   policy=ConfirmationPolicy(every_units=100))


def counts(n: int, start: int = 0) -> list[QuantityReported]:
    """`n` machine counts as the rules make them from a PLC counter (one unit each)."""
    return [QuantityReported(event_id=f"plc1/good/0/{i}", work_center="PRESS-01",
                             by=CountingSource.MACHINE, good=1, source="plc1",
                             checkpoint=Checkpoint("plc1", "good", i))
            for i in range(start + 1, start + n + 1)]


async def _prepared(url: str) -> tuple[Store, Dispatcher]:
    store = await Store.open(url)
    d = Dispatcher(store, RULES)
    await d.start()
    spec = OrderSpec(order_id="B1", revision=1, material="M", quantity=50_000_000,
                     operations=(OperationSpec("0010", "PRESS-01"),))
    await d.process(OrderReceived(event_id="bench-order", spec=spec))
    await d.process(OperationCommand(event_id="bench-start", work_center="PRESS-01",
                                     action=OperationAction.START, order_id="B1", op_no="0010"))
    return store, d


async def throughput(url: str, n: int) -> dict[str, float]:
    """Offer `n` events as fast as the queue takes them; committed events per second."""
    store, d = await _prepared(url)
    events = counts(n)
    try:
        t0 = time.perf_counter()
        futures = []
        for i in range(0, n, 100):  # as drivers deliver them: a poll's worth at a time
            futures.extend(await d.submit_many(events[i : i + 100]))
        outcomes = await asyncio.gather(*futures)
        elapsed = time.perf_counter() - t0
        assert all(o.status == Status.ACCEPTED for o in outcomes)
        return {"events_per_s": n / elapsed, "batches": d.stats.batches,
                "largest_batch": d.stats.largest_batch}
    finally:
        await d.stop()
        await store.close()


async def latency(url: str, rate: float, seconds: float) -> dict[str, float]:
    """Offer events at a fixed rate; enqueue-to-commit latency percentiles in ms."""
    store, d = await _prepared(url)
    n = int(rate * seconds)
    events = counts(n, start=10_000_000)
    lat: list[float] = []
    pending: list[asyncio.Task[None]] = []

    async def one(e: Event, t_enq: float) -> None:
        fut = await d.submit(e)
        await fut
        lat.append((time.perf_counter() - t_enq) * 1000)

    try:
        t0 = time.perf_counter()
        for i, e in enumerate(events):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(e, time.perf_counter())))
        await asyncio.gather(*pending)
        lat.sort()
        return {"offered_per_s": rate, "events": n,
                "p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99) - 1],
                "max_ms": lat[-1]}
    finally:
        await d.stop()
        await store.close()


def sqlite_ceiling(path: Path, n: int, batch: int = 100) -> float:
    """Plain sqlite3: the same event-log rows and checkpoint upsert, `batch` events per commit,
    WAL with synchronous=FULL. Rows per second."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, type TEXT,"
                " work_center TEXT, order_id TEXT, source TEXT, actor TEXT, source_ts TEXT,"
                " received_ts TEXT, committed_at TEXT, payload TEXT)")
    con.execute("CREATE TABLE cp (device TEXT, tag TEXT, value INTEGER, generation INTEGER,"
                " PRIMARY KEY (device, tag))")
    now = datetime.now(UTC).isoformat()
    rows = [(i, e.event_id, e.kind, "PRESS-01", None, "plc1", None, None, now, now,
             json.dumps(event_to_json(e))) for i, e in enumerate(counts(n), 1)]
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        chunk = rows[i : i + batch]
        con.execute("BEGIN")
        con.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", chunk)
        con.execute("INSERT INTO cp VALUES ('plc1','good',?,0) ON CONFLICT (device, tag) DO "
                    "UPDATE SET value=excluded.value", (chunk[-1][0],))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    con.close()
    return n / elapsed


async def run(quick: bool, pg_url: str | None = None) -> dict[str, Any]:
    """All figures of this benchmark."""
    n = 20_000 if quick else 100_000
    seconds = 5.0 if quick else 20.0
    pg_server = None
    if pg_url is None:
        from tests.servers import PostgresServer

        pg_server = PostgresServer()
        pg_server.start()
    try:
        rounds = []
        with tempfile.TemporaryDirectory() as tmp:
            # Ours and the ceiling alternate, three rounds, medians: fsync times on a shared
            # disk move by tens of percent from one second to the next.
            for r in range(3):
                ours = await throughput(f"sqlite+aiosqlite:///{tmp}/bench{r}.db", n)
                rounds.append((ours, sqlite_ceiling(Path(tmp) / f"ceiling{r}.db", n)))
            lat_url = f"sqlite+aiosqlite:///{tmp}/lat.db"
            sqlite_lat = await latency(lat_url, 1000.0, seconds)
        sqlite_tp = sorted((o for o, _ in rounds), key=lambda o: o["events_per_s"])[1]
        ceiling = sorted(c for _, c in rounds)[1]
        if pg_server is not None:
            pg_url = pg_server.create_database("bench")
            pg_lat_url = pg_server.create_database("benchlat")
        else:
            assert pg_url is not None
            pg_lat_url = pg_url
        assert pg_url is not None
        pg_tp = await throughput(pg_url, n // 2)
        pg_lat = await latency(pg_lat_url, 1000.0, seconds / 2)
    finally:
        if pg_server is not None:
            pg_server.stop()
    return {
        "benchmark": "dispatcher",
        "events": n,
        "durability": "sqlite WAL synchronous=FULL; postgresql fsync=on synchronous_commit=on",
        "sqlite_events_per_s": round(sqlite_tp["events_per_s"]),
        "sqlite_rounds": [[round(o["events_per_s"]), round(c)] for o, c in rounds],
        "sqlite_batches": sqlite_tp["batches"],
        "sqlite_ceiling_rows_per_s": round(ceiling),
        "sqlite_ratio_to_ceiling": round(sqlite_tp["events_per_s"] / ceiling, 3),
        "sqlite_p50_ms_at_1000_per_s": round(sqlite_lat["p50_ms"], 2),
        "sqlite_p99_ms_at_1000_per_s": round(sqlite_lat["p99_ms"], 2),
        "postgresql_events_per_s": round(pg_tp["events_per_s"]),
        "postgresql_p50_ms_at_1000_per_s": round(pg_lat["p50_ms"], 2),
        "postgresql_p99_ms_at_1000_per_s": round(pg_lat["p99_ms"], 2),
        "targets": {"sqlite_events_per_s": 10_000, "ratio_to_ceiling": 0.2, "p99_ms": 50},
    }


def main() -> None:
    """Command line entry."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small run, under a minute")
    p.add_argument("--pg-url", default=None)
    args = p.parse_args()
    result = asyncio.run(run(args.quick, args.pg_url))
    for k, v in result.items():
        if k != "targets":
            print(f"{k:36} {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
