"""The write-off feed: unassigned production a supervisor wrote off, read from the event log.

Write-offs are events (`unassigned_resolved` with action `write_off`), so the feed needs no
table of its own: it pages the log by seq, in commit order, never edited. Retention of the
event log (history.events_days) bounds how far back it reaches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mes_edge.store.repository import Store
from mes_edge.store.tables import events

KIND = "unassigned_resolved"


async def write_offs(store: Store, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Write-offs with seq > `after`, oldest first, and the seq the next page starts after.

    Scans at most `limit * 20` events of the kind (assignments are the same event type)."""
    stmt = (select(events.c.seq, events.c.event_id, events.c.work_center, events.c.actor,
                   events.c.committed_at, events.c.payload)
            .where(events.c.seq > after, events.c.type == KIND)
            .order_by(events.c.seq).limit(limit * 20))
    out: list[dict[str, Any]] = []
    last = after
    async with store.engine.connect() as conn:
        for row in await conn.execute(stmt):
            last = int(row.seq)
            p = row.payload
            if p.get("action") != "write_off":
                continue
            out.append({"seq": int(row.seq), "event_id": row.event_id,
                        "work_center": row.work_center, "good": int(p.get("good", 0)),
                        "scrap": dict(p.get("scrap") or {}), "rework": int(p.get("rework", 0)),
                        "reason": p.get("reason"), "actor": row.actor,
                        "written_off_at": row.committed_at})
            if len(out) == limit:
                break
    return out, last
