"""Alerts and their webhook outbox: every change of an alert and the webhook messages it causes
are written in ONE transaction, so a raised alert is never without its deliveries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, desc, func, select, update

from mes_edge.store.repository import Store
from mes_edge.store.tables import alert_webhooks, alerts, events

#: The event-log type of counts (QuantityReported.kind; the store does not import the domain).
QUANTITY_REPORTED = "quantity_reported"
#: Rows deleted per transaction by the webhook retention (short write locks on SQLite).
PURGE_BATCH = 5000

#: Severity changes kept per alert (the first, which names the raised severity, and the newest).
SEVERITY_CHANGES_KEPT = 20

#: Builds the outbox rows of one alert change from the alert row as committed:
#: [(destination, message_id, payload), ...].
Outbox = Callable[[dict[str, Any]], Sequence[tuple[str, str, dict[str, Any]]]]


def as_dict(row: Any) -> dict[str, Any]:
    """An alerts row as a plain dict."""
    return dict(row._mapping)


async def _outbox(conn: Any, row: dict[str, Any], outbox: Outbox, at: datetime) -> None:
    messages = [{"destination": d, "message_id": m, "payload": p, "created_at": at,
                 "attempts": 0} for d, m, p in outbox(row)]
    if messages:
        await conn.execute(alert_webhooks.insert(), messages)


async def insert(store: Store, values: dict[str, Any], outbox: Outbox) -> dict[str, Any]:
    """Raise: a new alerts row (and its webhook messages); returns the committed row."""
    async with store.transaction() as conn:
        new_id = (await conn.execute(alerts.insert().values(**values)
                                     .returning(alerts.c.id))).scalar_one()
        row = as_dict((await conn.execute(select(alerts).where(alerts.c.id == new_id))).one())
        await _outbox(conn, row, outbox, values["raised_at"])
    return row


async def change(store: Store, alert_id: int, values: dict[str, Any], outbox: Outbox,
                 at: datetime, *, only_if: Any = None) -> dict[str, Any] | None:
    """Clear or acknowledge an alert (only when `only_if` holds); None when nothing changed."""
    where = [alerts.c.id == alert_id]
    if only_if is not None:
        where.append(only_if)
    async with store.transaction() as conn:
        done = await conn.execute(update(alerts).where(and_(*where)).values(**values))
        if done.rowcount != 1:
            return None
        row = as_dict((await conn.execute(select(alerts).where(alerts.c.id == alert_id))).one())
        await _outbox(conn, row, outbox, at)
    return row


async def clear(store: Store, alert_id: int, at: datetime,
                outbox: Outbox) -> dict[str, Any] | None:
    """The condition ended: cleared_at (once)."""
    return await change(store, alert_id, {"cleared_at": at}, outbox, at,
                        only_if=alerts.c.cleared_at.is_(None))


async def acknowledge(store: Store, alert_id: int, by: str, at: datetime,
                      outbox: Outbox, *, station: str | None = None) -> dict[str, Any] | None:
    """Someone saw it: acked_by / acked_at, and the station it was acknowledged at (None:
    not at a station tablet); the first acknowledgement counts."""
    return await change(store, alert_id, {"acked_by": by, "acked_at": at,
                                          "acked_station": station}, outbox, at,
                        only_if=alerts.c.acked_at.is_(None))


async def change_severity(store: Store, alert_id: int, severity: str, message: str,
                          details: dict[str, Any], at: datetime, outbox: Outbox, *,
                          escalate: bool) -> dict[str, Any] | None:
    """The condition of an active alert changed severity: the same row takes the new severity,
    message and details, and the change is appended to `severity_changes`. Escalating (a more
    severe level) records `escalated_at` and asks for acknowledgement again: the acknowledgement
    it supersedes moves into the change's entry. None when the alert is cleared or already has
    that severity."""
    async with store.transaction() as conn:
        found = (await conn.execute(select(alerts).where(
            alerts.c.id == alert_id, alerts.c.cleared_at.is_(None)))).one_or_none()
        if found is None:
            return None
        old = as_dict(found)
        if old["severity"] == severity:
            return None
        entry: dict[str, Any] = {"at": at.isoformat(), "from": old["severity"], "to": severity}
        values: dict[str, Any] = {"severity": severity, "message": message, "details": details}
        if escalate:
            acked_at = old["acked_at"]
            entry.update(acked_by=old["acked_by"], acked_station=old["acked_station"],
                         acked_at=acked_at.isoformat() if acked_at is not None else None)
            values.update(escalated_at=at, acked_by=None, acked_at=None, acked_station=None)
        changes = list(old["severity_changes"] or [])
        if len(changes) >= SEVERITY_CHANGES_KEPT:  # the first (raised severity) and the newest
            changes = changes[:1] + changes[len(changes) - SEVERITY_CHANGES_KEPT + 2:]
        values["severity_changes"] = [*changes, entry]
        done = await conn.execute(update(alerts).where(
            alerts.c.id == alert_id, alerts.c.cleared_at.is_(None),
            alerts.c.severity == old["severity"]).values(**values))
        if done.rowcount != 1:
            return None
        row = as_dict((await conn.execute(select(alerts).where(alerts.c.id == alert_id))).one())
        await _outbox(conn, row, outbox, at)
    return row


async def get(store: Store, alert_id: int) -> dict[str, Any] | None:
    """One alert by id."""
    rows = await store.rows(alerts, alerts.c.id == alert_id)
    return as_dict(rows[0]) if rows else None


async def active(store: Store) -> list[dict[str, Any]]:
    """Every alert not cleared, oldest first."""
    rows = await store.rows(alerts, alerts.c.cleared_at.is_(None), order_by=[alerts.c.id])
    return [as_dict(r) for r in rows]


async def listing(store: Store, *, active_only: bool | None = None,
                  work_center: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts newest first: only active ones (True), only cleared ones (False) or all."""
    query = select(alerts).order_by(desc(alerts.c.id)).limit(limit)
    if active_only is True:
        query = query.where(alerts.c.cleared_at.is_(None))
    elif active_only is False:
        query = query.where(alerts.c.cleared_at.is_not(None))
    if work_center is not None:
        query = query.where(alerts.c.work_center == work_center)
    async with store.engine.connect() as conn:
        return [as_dict(r) for r in await conn.execute(query)]


async def pending_webhooks(store: Store, destination: str, limit: int) -> list[dict[str, Any]]:
    """Undelivered webhook messages of one destination, in the order they were written."""
    query = (select(alert_webhooks)
             .where(alert_webhooks.c.destination == destination,
                    alert_webhooks.c.delivered_at.is_(None))
             .order_by(alert_webhooks.c.id).limit(limit))
    async with store.engine.connect() as conn:
        return [as_dict(r) for r in await conn.execute(query)]


async def webhook_backlog(store: Store) -> dict[str, int]:
    """Undelivered webhook messages per destination (metrics, tests)."""
    query = (select(alert_webhooks.c.destination, func.count())
             .where(alert_webhooks.c.delivered_at.is_(None))
             .group_by(alert_webhooks.c.destination))
    async with store.engine.connect() as conn:
        return {str(d): int(n) for d, n in await conn.execute(query)}


async def mark_webhook(store: Store, message: int, attempts: int, *,
                       delivered_at: datetime | None, error: str | None) -> None:
    """Record one delivery attempt of a webhook message."""
    async with store.transaction() as conn:
        await conn.execute(update(alert_webhooks).where(alert_webhooks.c.id == message)
                           .values(attempts=attempts, delivered_at=delivered_at,
                                   last_error=error))


async def recent_counts(store: Store, committed_since: datetime, work_centers: Sequence[str],
                        per_work_center: int) -> list[tuple[int, str, datetime, int, int]]:
    """The newest `per_work_center` counts of each work center committed at or after
    `committed_since`, in commit order: (seq, work center, source time or else receive time,
    good, scrap). The scrap-rate window after a restart.

    Its cost follows the window, never the log: one seek in the commit-time index finds the
    first seq of the window, then each work center reads an index range of (work_center, seq)
    backwards, at most `per_work_center` rows."""
    out: list[tuple[int, str, datetime, int, int]] = []
    async with store.engine.connect() as conn:
        first = await conn.scalar(select(events.c.seq)
                                  .where(events.c.committed_at >= committed_since)
                                  .order_by(events.c.committed_at).limit(1))
        if first is None:
            return out
        for wc in work_centers:
            query = (select(events.c.seq, events.c.source_ts, events.c.received_ts,
                            events.c.payload)
                     .where(events.c.work_center == wc, events.c.seq >= first,
                            events.c.committed_at >= committed_since,
                            events.c.type == QUANTITY_REPORTED)
                     .order_by(events.c.seq.desc()).limit(per_work_center))
            for r in await conn.execute(query):
                payload = r.payload or {}
                scrap = payload.get("scrap") or {}
                out.append((int(r.seq), wc, r.source_ts or r.received_ts,
                            int(payload.get("good") or 0), sum(int(q) for q in scrap.values())))
    out.sort()
    return out


async def purge_webhooks(store: Store, delivered_before: datetime) -> int:
    """Delete webhook messages delivered before `delivered_before` (per destination, by the
    (destination, delivered_at) index, in batches); undelivered ones are never deleted.
    Returns how many were deleted."""
    async with store.engine.connect() as conn:
        destinations = [str(d) for d in await conn.scalars(
            select(alert_webhooks.c.destination).distinct())]
    purged = 0
    for destination in destinations:
        while True:
            batch = (select(alert_webhooks.c.id)
                     .where(alert_webhooks.c.destination == destination,
                            alert_webhooks.c.delivered_at.is_not(None),
                            alert_webhooks.c.delivered_at < delivered_before)
                     .limit(PURGE_BATCH).scalar_subquery())
            async with store.transaction() as conn:
                done = await conn.execute(delete(alert_webhooks)
                                          .where(alert_webhooks.c.id.in_(batch)))
            purged += done.rowcount
            if done.rowcount < PURGE_BATCH:
                break
    return purged
