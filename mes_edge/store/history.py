"""History that does not slow the present (issue 14): WIP snapshots, retention with export.

- A WIP snapshot is the state (every order but the closed ones, every work center, the
  confirmations of those orders) as it stood right after event `seq`. `db verify` starts from
  the latest one and replays only the events after it; retention never purges an event the
  latest snapshot does not cover.
- Retention deletes events (per kind) and rejected events older than the kept days. What is
  purged is first written to `<export_dir>/<kind>-YYYY-MM-DD.jsonl.gz` (one file per UTC day of
  commit, compressed JSON lines; a later purge of the same day appends a gzip member), flushed
  to disk, and only then deleted. The high-water marks keep the numbers going forward.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, desc, func, select

from mes_edge.domain import MemoryState, OrderStatus
from mes_edge.store import codec
from mes_edge.store.repository import Store
from mes_edge.store.tables import events, rejected_events, wip_snapshots

#: Snapshots kept (the newest and the one before it, in case the newest is being written).
SNAPSHOTS_KEPT = 2
_PURGE_CHUNK = 5_000


def state_to_json(state: MemoryState) -> dict[str, Any]:
    """The state as JSON (orders, work centers, confirmations in commit order), without the
    closed orders and their confirmations: closed is final, the database keeps them as they
    are, and a snapshot stays the size of what is active instead of growing with all history
    (replay reads back a closed order an event after the snapshot names)."""
    closed = {o.order_id for o in state.order_map.values() if o.status == OrderStatus.CLOSED}
    return {
        "orders": [codec.order_to_json(o) for o in state.order_map.values()
                   if o.order_id not in closed],
        "work_centers": [codec.wc_to_json(w) for w in state.wc_map.values()],
        "confirmations": [codec.confirmation_to_json(c) for c in state.conf_map.values()
                          if c.order_id not in closed],
    }


def state_from_json(data: Mapping[str, Any]) -> MemoryState:
    """The state a snapshot holds."""
    state = MemoryState()
    for o in data["orders"]:
        order = codec.order_from_json(o)
        state.order_map[order.order_id] = order
    for w in data["work_centers"]:
        wc = codec.wc_from_json(w)
        state.wc_map[wc.work_center] = wc
    for c in data["confirmations"]:
        state.add_confirmation(codec.confirmation_from_json(c))
    state.reindex()
    return state


async def latest_snapshot(store: Store) -> tuple[int, MemoryState] | None:
    """(seq, state) of the newest snapshot, or None."""
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(wip_snapshots.c.seq, wip_snapshots.c.state)
                                  .order_by(desc(wip_snapshots.c.seq)).limit(1))).first()
    if row is None:
        return None
    return int(row.seq), state_from_json(row.state)


async def latest_snapshot_seq(store: Store) -> int:
    """The seq the newest snapshot covers (0: none)."""
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.max(wip_snapshots.c.seq))) or 0)


async def save_snapshot(store: Store, seq: int, state: MemoryState) -> None:
    """Store a snapshot of the state right after event `seq`; keep only the newest few."""
    data = await asyncio.to_thread(state_to_json, state)
    async with store.transaction() as conn:
        await conn.execute(delete(wip_snapshots).where(wip_snapshots.c.seq == seq))
        await conn.execute(wip_snapshots.insert().values(
            seq=seq, taken_at=datetime.now(UTC), orders=len(data["orders"]), state=data))
        seqs = [int(r[0]) for r in await conn.execute(
            select(wip_snapshots.c.seq).order_by(desc(wip_snapshots.c.seq)))]
        if len(seqs) > SNAPSHOTS_KEPT:
            await conn.execute(delete(wip_snapshots).where(
                wip_snapshots.c.seq <= seqs[SNAPSHOTS_KEPT]))


def _day_file(folder: Path, kind: str, day: date) -> Path:
    return folder / f"{kind}-{day.isoformat()}.jsonl.gz"


def _write_export(folder: Path, kind: str, rows: list[dict[str, Any]], stamp: str) -> list[str]:
    """Append rows to their day files (a gzip member per purge), flushed to disk."""
    folder.mkdir(parents=True, exist_ok=True)
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_day[datetime.fromisoformat(r[stamp]).astimezone(UTC).date()].append(r)
    written = []
    for day, day_rows in sorted(by_day.items()):
        path = _day_file(folder, kind, day)
        with path.open("ab") as raw:
            with gzip.GzipFile(fileobj=raw, mode="ab") as gz:
                for r in day_rows:
                    gz.write(json.dumps(r, separators=(",", ":"), default=str).encode() + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        written.append(str(path))
    return written


def _jsonable(row: Any) -> dict[str, Any]:
    out = {}
    for k, v in row._mapping.items():
        out[k] = v.isoformat() if isinstance(v, datetime) else v
    return out


async def purge_events(store: Store, *, keep_days: float | None,
                       keep_days_by_kind: Mapping[str, float], export_dir: Path | None,
                       now: datetime | None = None) -> tuple[int, list[str]]:
    """Delete (after exporting) events older than their kind's kept days and covered by the
    latest snapshot; returns (how many, files written)."""
    now = now or datetime.now(UTC)
    covered = await latest_snapshot_seq(store)
    if covered == 0:
        return 0, []  # no snapshot yet: the whole log is still needed to rebuild WIP
    total = 0
    files: set[str] = set()
    kinds = dict(keep_days_by_kind)
    rounds: list[tuple[Any, float]] = [(events.c.type == k, d) for k, d in kinds.items()]
    if keep_days is not None:
        rounds.append((events.c.type.not_in(list(kinds)) if kinds else None, keep_days))
    for kind_filter, days in rounds:
        cut = now - timedelta(days=days)
        while True:
            query = (select(events).where(events.c.committed_at < cut, events.c.seq <= covered)
                     .order_by(events.c.seq).limit(_PURGE_CHUNK))
            if kind_filter is not None:
                query = query.where(kind_filter)
            async with store.engine.connect() as conn:
                rows = list(await conn.execute(query))
            if not rows:
                break
            if export_dir is not None:
                data = [_jsonable(r) for r in rows]
                files.update(await asyncio.to_thread(
                    _write_export, export_dir, "events", data, "committed_at"))
            async with store.transaction() as conn:
                await conn.execute(delete(events).where(
                    events.c.seq.in_([r.seq for r in rows])))
            total += len(rows)
    return total, sorted(files)


async def purge_rejections(store: Store, *, keep_days: float | None, export_dir: Path | None,
                           now: datetime | None = None) -> tuple[int, list[str]]:
    """Delete (after exporting) refused events older than the kept days."""
    if keep_days is None:
        return 0, []
    cut = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    total = 0
    files: set[str] = set()
    while True:
        async with store.engine.connect() as conn:
            rows = list(await conn.execute(
                select(rejected_events).where(rejected_events.c.rejected_at < cut)
                .order_by(rejected_events.c.id).limit(_PURGE_CHUNK)))
        if not rows:
            return total, sorted(files)
        if export_dir is not None:
            files.update(await asyncio.to_thread(
                _write_export, export_dir, "rejections", [_jsonable(r) for r in rows],
                "rejected_at"))
        async with store.transaction() as conn:
            await conn.execute(delete(rejected_events).where(
                rejected_events.c.id.in_([r.id for r in rows])))
        total += len(rows)


def read_export(path: Path) -> list[dict[str, Any]]:
    """The rows of one export file (every gzip member)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
