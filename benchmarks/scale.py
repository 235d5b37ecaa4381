"""Cost as the plant's work grows: board and queues, memory, restart (issue 14).

Runs the real service (`mes-edge run`, a child process) on SQLite and on PostgreSQL and measures,
from outside, over HTTP:

- orders accepted per second through `PUT /api/v1/work-orders/{id}` (four clients);
- the supervisor board (`GET /api/v1/board`) and a station queue
  (`GET /api/v1/stations/{wc}/queue`): response size and median time at 1,000 / 10,000 / 20,000
  open orders, with the ratio to the 1,000-order figure (goal: at most 1.5, i.e. flat);
- RSS of the service after churning orders through their whole life (created, started, counted,
  completed, closed): after the first N/10 and after N (goal: at most 1.2x);
- time to ready (`/readyz` 200) after a restart with a large event log.

`--quick` uses 10x smaller churn and event-log sizes (the open-order steps stay the same);
`--churn N` and `--events N` set them, `--part` runs only some parts (open, churn, restart; the
restart part fills the churn's database, so it needs the churn part). Each part's figures are
printed to stderr as soon as they are measured (a run cut short by a timeout keeps them).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

WORK_CENTERS = ("PRESS-01", "CNC-02", "ASSY-03")
#: The churn runs one client per work center (a station runs one operation at a time): more
#: work centers, more clients at once, so the full 100,000-order churn fits in a run.
CHURN_WORK_CENTERS = tuple(f"CELL-{i:02d}" for i in range(1, 13))
STEPS = (1_000, 10_000, 20_000)
#: Closed orders leave memory this long after they ended (history.evict_closed_after_s; the
#: product's default is an hour, the churn runs only minutes).
CHURN_EVICT_S = 30.0
#: The service's WIP snapshot (history.snapshot_every_s, an hour by default) runs this often in
#: the churn, so its memory is part of what is measured, not only an hour into a long run.
CHURN_SNAPSHOT_S = 120.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plant(db_url: str, port: int, work_centers: tuple[str, ...] = WORK_CENTERS,
          evict_s: float | None = None) -> dict[str, Any]:
    """Work centers counted by the operator (the churn reports through the API)."""
    doc: dict[str, Any] = {
        "site": "bench",
        "database": {"url": db_url},
        "api": {"host": "127.0.0.1", "port": port},
        "production": {"confirmation": {"on_report": True}},
        "work_centers": [{"id": wc, "counting": "operator"} for wc in work_centers],
    }
    if evict_s is not None:
        doc["history"] = {"evict_closed_after_s": evict_s, "snapshot_every_s": CHURN_SNAPSHOT_S,
                          "check_every_s": CHURN_SNAPSHOT_S}
    return doc


def _write(config: Path, doc: dict[str, Any]) -> None:
    config.write_text(yaml.safe_dump(doc))


def _cli(config: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "mes_edge.cli", *args, "--config", str(config)],
                         check=True, capture_output=True, text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


class Service:
    """`mes-edge run` as a child process."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, limit_s: float = 600.0) -> float:
        """Start and wait until /readyz answers 200; returns the seconds it took."""
        t0 = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mes_edge.cli", "run", "--config", str(self.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(limit_s), httpx.AsyncClient(timeout=2) as c:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"the service exited with {self.proc.returncode}")
                try:
                    if (await c.get(self.url + "/readyz")).status_code == 200:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(60):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


def _order(i: int, wc: str, qty: int = 10) -> dict[str, Any]:
    return {"revision": 1, "material": f"M-{i % 50}", "quantity": qty,
            "due": "2031-01-01T00:00:00Z",
            "operations": [{"op_no": "0010", "work_center": wc}]}


async def put_orders(url: str, token: str, first: int, last: int,
                     clients: int = 4) -> float:
    """PUT orders first..last-1 with `clients` concurrent clients; orders per second."""
    headers = {"Authorization": f"Bearer {token}"}
    ids = iter(range(first, last))

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as c:
            for i in ids:
                wc = WORK_CENTERS[i % len(WORK_CENTERS)]
                r = await c.put(f"/api/v1/work-orders/O-{i:07d}", json=_order(i, wc))
                if r.status_code not in (200, 201):
                    raise RuntimeError(f"PUT O-{i}: {r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return (last - first) / (time.perf_counter() - t0)


async def read_cost(url: str, token: str, path: str, n: int = 5) -> dict[str, float]:
    """Median time and size of a GET."""
    times, size = [], 0
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=120) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await c.get(path)
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
            size = len(r.content)
    return {"median_s": round(statistics.median(times), 4), "bytes": size}


async def churn(url: str, erp: str, tablets: dict[str, str], first: int, last: int) -> float:
    """Orders first..last-1 through their whole life, one client per work center (a station
    runs one operation at a time); orders per second."""

    centers = list(tablets)

    async def worker(k: int, wc: str) -> None:
        e = {"Authorization": f"Bearer {erp}"}
        t = {"Authorization": f"Bearer {tablets[wc]}"}
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            for i in range(first + k, last, len(centers)):
                oid = f"C-{i:07d}"
                op = {"order_id": oid, "op_no": "0010"}
                steps = [
                    ("PUT", f"/api/v1/work-orders/{oid}", e, _order(i, wc, 5)),
                    ("POST", f"/api/v1/stations/{wc}/start", t, op),
                    ("POST", f"/api/v1/stations/{wc}/report", t, {**op, "good": 5}),
                    ("POST", f"/api/v1/stations/{wc}/complete", t, op),
                    ("POST", f"/api/v1/work-orders/{oid}/close", e, {"reason": "done"}),
                ]
                for method, path, headers, body in steps:
                    r = await c.request(method, path, headers=headers, json=body)
                    if r.status_code not in (200, 201):
                        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k, wc) for k, wc in enumerate(centers)))
    return (last - first) / (time.perf_counter() - t0)


async def fill_event_log(db_url: str, events: int) -> tuple[float, int]:
    """Append `events` accepted events straight through the dispatcher (fast, like a busy
    line); (events per second, events now in the log)."""
    from datetime import UTC, datetime

    from mes_edge.app.plant import plant_rules
    from mes_edge.config import parse_settings
    from mes_edge.dispatcher import Dispatcher
    from mes_edge.domain import (
        CountingSource,
        OperationAction,
        OperationCommand,
        OperationSpec,
        OrderReceived,
        OrderSpec,
        QuantityReported,
    )
    from mes_edge.store import Store

    settings = parse_settings(plant(db_url, _free_port(), CHURN_WORK_CENTERS))
    wc = CHURN_WORK_CENTERS[0]
    store = await Store.open(db_url)
    d = Dispatcher(store, plant_rules(settings))
    await d.start()
    try:
        spec = OrderSpec(order_id="LOG-1", revision=1, material="M", quantity=10 * events,
                         operations=(OperationSpec(op_no="0010", work_center=wc),))
        await d.process(OrderReceived(event_id="log-order", spec=spec))
        await d.process(OperationCommand(event_id="log-start", work_center=wc,
                                         action=OperationAction.START, order_id="LOG-1",
                                         op_no="0010"))
        t0 = time.perf_counter()
        chunk = 5_000
        now = datetime.now(UTC)
        for start in range(0, events, chunk):
            futures = await d.submit_many(
                QuantityReported(event_id=f"log-{i}", work_center=wc,
                                 by=CountingSource.OPERATOR, good=1, order_id="LOG-1",
                                 op_no="0010", received_ts=now)
                for i in range(start, min(events, start + chunk)))
            await asyncio.gather(*futures)
        return events / (time.perf_counter() - t0), d.last_seq
    finally:
        await d.stop()
        await store.close()


async def backend(name: str, db_url: str, work: Path, churn_total: int, events: int,
                  parts: set[str]) -> dict[str, Any]:
    """Every figure for one database."""
    port = _free_port()
    config = work / f"{name}.yaml"
    out: dict[str, Any] = {}
    if "open" in parts:
        out.update(await open_orders(name, db_url, config, port))
    if "churn" in parts:
        churn_url, churn_out = await churn_part(name, db_url, config, port, churn_total)
        out["churn"] = churn_out
        if "restart" in parts:
            out.update(await restart_part(name, churn_url, config, port, events, churn_total))
    return out


async def open_orders(name: str, db_url: str, config: Path, port: int) -> dict[str, Any]:
    """Orders accepted per second; board and queue cost at each step of open orders."""
    _write(config, plant(db_url, port))
    _cli(config, "db", "upgrade")
    erp = _cli(config, "token", "create", "--role", "erp", "--name", "bench-erp")
    sup = _cli(config, "token", "create", "--role", "supervisor", "--name", "bench-sup")
    tablets = {wc: _cli(config, "token", "create", "--role", "operator", "--work-center", wc,
                        "--name", f"tab-{wc}") for wc in WORK_CENTERS}
    svc = Service(config, port)
    out: dict[str, Any] = {}
    await svc.start()
    try:
        rates, board, queue = [], {}, {}
        have = 0
        for step in STEPS:
            rates.append(await put_orders(svc.url, erp, have, step))
            have = step
            board[step] = await read_cost(svc.url, sup, "/api/v1/board")
            queue[step] = await read_cost(svc.url, tablets["ASSY-03"],
                                          "/api/v1/stations/ASSY-03/queue")
        out["orders_per_s"] = round(statistics.median(rates))
        base_b, base_q = board[STEPS[0]]["median_s"], queue[STEPS[0]]["median_s"]
        out["board"] = {str(k): {**v, "ratio": round(v["median_s"] / base_b, 2)}
                        for k, v in board.items()}
        out["station_queue"] = {str(k): {**v, "ratio": round(v["median_s"] / base_q, 2)}
                                for k, v in queue.items()}
        out["rss_mb_with_20000_open"] = round(svc.rss_mb(), 1)
        # A restart with every one of them open (each loaded, indexed, on the board).
        await svc.stop()
        out["restart_with_20000_open_s"] = round(await svc.start(), 2)
    finally:
        await svc.stop()
    print(f"{name}: {json.dumps(out)}", file=sys.stderr, flush=True)  # survives a later failure
    return out


async def churn_part(name: str, db_url: str, config: Path, port: int,
                     churn_total: int) -> tuple[str, dict[str, Any]]:
    """Churn on a fresh database: memory should follow what is active, not what ever was.
    RSS after the first tenth and after all (and after each further tenth, to stderr)."""
    churn_url = db_url + "_churn" if name == "postgresql" else db_url.replace(".db", "-churn.db")
    if name == "postgresql":
        churn_url = await asyncio.to_thread(_pg_database, churn_url)  # it runs its own loop
    _write(config, plant(churn_url, port, CHURN_WORK_CENTERS, CHURN_EVICT_S))
    _cli(config, "db", "upgrade")
    erp = _cli(config, "token", "create", "--role", "erp", "--name", "bench-erp")
    tablets = {wc: _cli(config, "token", "create", "--role", "operator", "--work-center", wc,
                        "--name", f"tab-{wc}") for wc in CHURN_WORK_CENTERS}
    svc = Service(config, port)
    await svc.start()
    try:
        first = churn_total // 10
        rate = await churn(svc.url, erp, tablets, 0, first)
        rss_first = svc.rss_mb()
        print(f"{name}: churn {first} orders {rate:.1f}/s rss {rss_first:.1f} MB",
              file=sys.stderr, flush=True)
        done = first
        while done < churn_total:
            step = min(churn_total, done + first)
            await churn(svc.url, erp, tablets, done, step)
            done = step
            print(f"{name}: churn {done} orders rss {svc.rss_mb():.1f} MB",
                  file=sys.stderr, flush=True)
        rss_all = svc.rss_mb()
        out = {"orders": churn_total, "work_centers": len(CHURN_WORK_CENTERS),
               "evict_closed_after_s": CHURN_EVICT_S, "snapshot_every_s": CHURN_SNAPSHOT_S,
               "orders_per_s": round(rate, 1),
               f"rss_mb_after_{first}": round(rss_first, 1),
               f"rss_mb_after_{churn_total}": round(rss_all, 1),
               "ratio": round(rss_all / rss_first, 2)}
    finally:
        await svc.stop()
    print(f"{name}: churn {json.dumps(out)}", file=sys.stderr, flush=True)
    return churn_url, out


async def restart_part(name: str, churn_url: str, config: Path, port: int, events: int,
                       churn_total: int) -> dict[str, Any]:
    """Restart with a large event log (the churn's database, filled with operator reports)."""
    out: dict[str, Any] = {}
    rate, in_log = await fill_event_log(churn_url, events)
    out["event_log_fill_per_s"] = round(rate)
    svc = Service(config, port)
    ready = await svc.start()
    out["restart"] = {"events_in_log": in_log, "ready_s": round(ready, 2)}
    await svc.stop()
    print(f"{name}: {json.dumps(out)}", file=sys.stderr, flush=True)
    return out


def _pg_database(url: str) -> str:
    """Create the database named by `url` (on the benchmark's own server)."""
    from sqlalchemy.engine import make_url

    from tests.pgutil import fresh_database_from_url

    u = make_url(url)
    return fresh_database_from_url(u.set(database="postgres").render_as_string(
        hide_password=False), str(u.database))


async def run(quick: bool, backends: list[str], churn_total: int, events: int,
              parts: set[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "scale", "quick": quick, "steps": list(STEPS),
                              "churn": churn_total, "events": events, "parts": sorted(parts)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "sqlite" in backends:
            result["sqlite"] = await backend("sqlite", f"sqlite+aiosqlite:///{work}/scale.db",
                                             work, churn_total, events, parts)
        if "postgresql" in backends:
            from tests.servers import PostgresServer

            pg = PostgresServer()
            pg.start()
            try:
                result["postgresql"] = await backend(
                    "postgresql", pg.create_database("scale"), work, churn_total, events,
                    parts)
            finally:
                pg.stop()
    result["goals"] = {"board_and_queue_ratio_max": 1.5, "churn_rss_ratio_max": 1.2,
                       "restart_ready_s": "seconds"}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10x smaller churn and event log")
    p.add_argument("--backend", action="append", choices=["sqlite", "postgresql"],
                   help="only this database (repeat; default both)")
    p.add_argument("--churn", type=int, metavar="N",
                   help="orders to churn (default 100,000; 10,000 with --quick)")
    p.add_argument("--events", type=int, metavar="N",
                   help="events in the log before the restart (default 1,000,000; 100,000 with "
                   "--quick)")
    p.add_argument("--part", action="append", choices=["open", "churn", "restart"],
                   help="only this part (repeat; default all; restart needs churn)")
    args = p.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    churn_total = args.churn or (10_000 if args.quick else 100_000)
    events = args.events or (100_000 if args.quick else 1_000_000)
    parts = set(args.part or ["open", "churn", "restart"])
    if "restart" in parts and "churn" not in parts:
        p.error("the restart part fills the churn's database: add --part churn")
    result = asyncio.run(run(args.quick, args.backend or ["sqlite", "postgresql"], churn_total,
                             events, parts))
    for name in ("sqlite", "postgresql"):
        if name in result:
            print(f"== {name}")
            for k, v in result[name].items():
                print(f"  {k:28} {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
