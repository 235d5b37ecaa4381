"""The books of one demo run: what the line made against what the MES and the ERP hold.

Per work center, this run only: what the machines counted (and the terminals reported) =
what the ERP received + unassigned production the MES holds (counted while no operation ran)
+ what was written off, in good and in scrap. A run on kept data starts its books where the
earlier run's ended (feed cursor, unassigned and written-off quantities at the start).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger("mes_edge.demo")


@dataclass
class Quantity:
    """Good and scrap (rework counts as good: it is a part that exists)."""

    good: int = 0
    scrap: int = 0

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.good - other.good, self.scrap - other.scrap)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.good + other.good, self.scrap + other.scrap)

    def __str__(self) -> str:
        return f"{self.good}+{self.scrap}"


#: Per work center: (open unassigned production, written off), as GET /production/unassigned.
Unassigned = dict[str, tuple[Quantity, Quantity]]


def _quantity(part: dict[str, Any] | None) -> Quantity:
    if not part:
        return Quantity()
    scrap = part.get("scrap", 0)
    scrap_total = sum(scrap.values()) if isinstance(scrap, dict) else scrap
    return Quantity(int(part.get("good", 0)) + int(part.get("rework", 0)), int(scrap_total))


async def fetch_unassigned(client: Any) -> Unassigned | None:
    """Open and written-off unassigned production by work center; None when this MES has no
    such endpoint (then machine counts made while no operation ran are not accounted for)."""
    r = await client.get("/api/v1/production/unassigned")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return {w["work_center"]: (_quantity(w.get("open")), _quantity(w.get("written_off")))
            for w in r.json()["work_centers"]}


@dataclass
class RunStart:
    """Where this run began in the MES's books: reconciliation counts only what came after."""

    cursor: int = 0
    unassigned: Unassigned = field(default_factory=dict)
    at: float = field(default_factory=time.time)


def reconcile(line: Any, erp: Any, unassigned: Unassigned | None,
              start: RunStart) -> tuple[bool, str]:
    """Per work center, this run only: what the machines counted (and the terminals reported)
    = what the ERP received + unassigned production + written off (both as changed in this
    run), in good and in scrap."""
    got = erp.totals_by_work_center()
    rows = [f"{'work center':12} {'made':>9} {'ERP':>9} {'unassigned':>10} {'written off':>11}"
            "  result  (good+scrap)"]
    ok = True
    for s in line.stations:
        wc = s.work_center
        made = Quantity(s.produced.good, s.produced.scrap)
        e = got.get(wc, {"good": 0, "scrap": 0, "rework": 0})
        erp_qty = Quantity(e["good"] + e.get("rework", 0), e["scrap"])
        now_open, now_off = (unassigned or {}).get(wc, (Quantity(), Quantity()))
        was_open, was_off = start.unassigned.get(wc, (Quantity(), Quantity()))
        held, off = now_open - was_open, now_off - was_off
        match = made == erp_qty + held + off
        ok &= match
        rows.append(f"{wc:12} {made!s:>9} {erp_qty!s:>9} {held!s:>10} {off!s:>11}  "
                    f"{'match' if match else 'MISMATCH'}")
    for wc in sorted(set(got) - {s.work_center for s in line.stations}):
        ok = False
        rows.append(f"{wc:12} confirmations for a work center of no station: MISMATCH")
    if unassigned is None:
        rows.append("(this MES reports no unassigned production: counts made while no operation "
                    "ran are missing above)")
    if erp.received.order_violations:
        ok = False
        rows.append(f"order violations: {erp.received.order_violations[:5]}")
    rows.append(f"ERP received {len(erp.received.by_id)} confirmations in this run "
                f"({erp.received.duplicates} duplicates ignored by id)")
    return ok, "\n".join(rows)


async def run_start(client: Any) -> RunStart:
    """Confirm what an earlier run left unconfirmed, and note where this run begins."""
    at = time.time()
    flushed = await client.post("/api/v1/confirmations/flush")
    flushed.raise_for_status()
    return RunStart(cursor=int(flushed.json()["last_cursor"]),
                    unassigned=await fetch_unassigned(client) or {}, at=at)


async def drain_and_reconcile(client: Any, line: Any, erp: Any, start: RunStart) -> int:
    """Flush, pull and reconcile until everything matches, or until the books stop changing
    (then a mismatch is real), bounded in time."""
    deadline = time.monotonic() + 90
    ok = caught_up = False
    report, previous, unchanged = "", "", 0
    while time.monotonic() < deadline:
        try:
            flushed = await client.post("/api/v1/confirmations/flush")
            flushed.raise_for_status()
            last = int(flushed.json()["last_cursor"])
            await erp.pull_once()
            unassigned = await fetch_unassigned(client)
        except (httpx.HTTPError, ValueError, KeyError) as err:
            log.info("demo: the MES is not answering yet (%s)", err)
            await asyncio.sleep(1.0)
            continue
        caught_up = erp.cursor >= last
        ok, report = reconcile(line, erp, unassigned, start)
        if caught_up and ok:
            break
        unchanged = unchanged + 1 if caught_up and report == previous else 0
        if unchanged >= 4:  # the books are settled: the difference is real
            break
        previous = report
        await asyncio.sleep(1.0)
    refused = await _refused_in_run(client, start)
    print("\nreconciliation of this run (made = ERP + unassigned + written off):")
    print(report or "(the MES never answered)")
    if refused:
        print(refused)
    if ok and caught_up:
        print("demo: everything matches exactly", flush=True)
        return 0
    print("demo: " + ("MISMATCH" if caught_up else
                      "INCOMPLETE: the MES and the ERP did not settle in 90 s"), flush=True)
    return 1


async def _refused_in_run(client: Any, start: RunStart) -> str:
    """A line on the events the MES refused during this run (none is expected)."""
    try:
        r = await client.get("/api/v1/rejected-events", params={"limit": 1000})
        r.raise_for_status()
        rows = r.json()
    except (httpx.HTTPError, ValueError) as err:
        return f"(rejected events unavailable: {err})"
    if isinstance(rows, dict):
        rows = next((v for v in rows.values() if isinstance(v, list)), [])
    since = datetime.fromtimestamp(start.at, UTC)
    mine = [r for r in rows if datetime.fromisoformat(r["rejected_at"]) >= since]
    if not mine:
        return ""
    reasons = "; ".join(f"{r.get('work_center')}: {r.get('reason')}" for r in mine[:5])
    return f"events refused by the MES during this run: {len(mine)} ({reasons})"


