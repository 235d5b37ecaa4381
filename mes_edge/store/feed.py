"""The confirmation feed: pages in commit order, acks, delivery states, retention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from mes_edge.store.repository import Store
from mes_edge.store.tables import confirmation_deliveries, confirmations, feed_positions

RETENTION = "retention_floor"
#: Delivery states of a confirmation that the ERP does not have yet (no row at all: pending).
OPEN_STATES = ("retrying", "error")


async def retention_floor(store: Store) -> int:
    """The highest cursor purged: feeds asking for anything at or below it get 410."""
    async with store.engine.connect() as conn:
        value = await conn.scalar(select(feed_positions.c.cursor).where(
            feed_positions.c.consumer == RETENTION))
    return int(value or 0)


async def page(store: Store, after: int, limit: int) -> list[Any]:
    """Confirmations with cursor > after, in cursor order, with their delivery state."""
    stmt = (select(confirmations, confirmation_deliveries.c.state.label("delivery"))
            .select_from(confirmations.outerjoin(
                confirmation_deliveries,
                confirmation_deliveries.c.confirmation_id == confirmations.c.confirmation_id))
            .where(confirmations.c.cursor > after).order_by(confirmations.c.cursor).limit(limit))
    async with store.engine.connect() as conn:
        return list(await conn.execute(stmt))


async def _set_position(conn: Any, store: Store, consumer: str, cursor: int) -> None:
    stmt = store.insert(feed_positions).values(consumer=consumer, cursor=cursor,
                                                updated_at=datetime.now(UTC))
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=["consumer"],
        set_={"cursor": func.max(feed_positions.c.cursor, stmt.excluded.cursor)
              if store._dialect == "sqlite" else func.greatest(feed_positions.c.cursor,
                                                               stmt.excluded.cursor),
              "updated_at": stmt.excluded.updated_at}))


async def position(store: Store, consumer: str) -> int:
    """How far a consumer acknowledged the feed."""
    async with store.engine.connect() as conn:
        value = await conn.scalar(select(feed_positions.c.cursor).where(
            feed_positions.c.consumer == consumer))
    return int(value or 0)


async def ack(store: Store, consumer: str, cursor: int,
              results: Iterable[tuple[str, str, str | None]]) -> tuple[int, int]:
    """Mark everything up to `cursor` delivered, and per-item results (posted / error).

    Returns (newly delivered, results applied). Delivery states only move forward:
    delivered -> posted | error; an error may later become posted.
    """
    now = datetime.now(UTC)
    async with store.transaction() as conn:
        await _set_position(conn, store, consumer, cursor)
        undelivered = await conn.execute(
            select(confirmations.c.confirmation_id, confirmations.c.cursor,
                   confirmations.c.order_id)
            .select_from(confirmations.outerjoin(
                confirmation_deliveries,
                confirmation_deliveries.c.confirmation_id == confirmations.c.confirmation_id))
            .where(confirmations.c.cursor <= cursor,
                   confirmation_deliveries.c.confirmation_id.is_(None)))
        rows = [{"confirmation_id": r.confirmation_id, "cursor": r.cursor, "order_id": r.order_id,
                 "state": "delivered", "message": None, "attempts": 1, "updated_at": now}
                for r in undelivered]
        if rows:
            await conn.execute(confirmation_deliveries.insert(), rows)
        applied = 0
        for cid, state, message in results:
            info = (await conn.execute(select(confirmations.c.cursor, confirmations.c.order_id)
                                       .where(confirmations.c.confirmation_id == cid))).first()
            if info is None:
                continue
            stmt = store.insert(confirmation_deliveries).values(
                confirmation_id=cid, cursor=info.cursor, order_id=info.order_id, state=state,
                message=message, attempts=1, updated_at=now)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["confirmation_id"],
                set_={"state": stmt.excluded.state, "message": stmt.excluded.message,
                      "updated_at": stmt.excluded.updated_at}))
            applied += 1
    return len(rows), applied


async def purge(store: Store, older_than: datetime) -> int:
    """Delete confirmations older than the date that the ERP has received; raise the floor.

    Only a prefix of the feed is purged (nothing after the first one still undelivered), so the
    410 floor stays a single number.
    """
    async with store.transaction() as conn:
        # Open: not delivered yet, being retried, or refused by the ERP (state error) - never
        # purged.
        first_open = await conn.scalar(
            select(func.min(confirmations.c.cursor))
            .select_from(confirmations.outerjoin(
                confirmation_deliveries,
                confirmation_deliveries.c.confirmation_id == confirmations.c.confirmation_id))
            .where(confirmation_deliveries.c.confirmation_id.is_(None)
                   | confirmation_deliveries.c.state.in_(OPEN_STATES)))
        # Age by when we committed it, not by the (possibly wrong) clock of its source.
        limit_q = select(func.max(confirmations.c.cursor)).where(
            confirmations.c.committed_at < older_than)
        if first_open is not None:
            limit_q = limit_q.where(confirmations.c.cursor < first_open)
        upto = await conn.scalar(limit_q)
        if upto is None:
            return 0
        result = await conn.execute(delete(confirmations).where(confirmations.c.cursor <= upto))
        await conn.execute(delete(confirmation_deliveries).where(
            confirmation_deliveries.c.cursor <= upto))
        await _set_position(conn, store, RETENTION, int(upto))
        return int(result.rowcount or 0)


async def delivery_counts(store: Store) -> dict[str, int]:
    """How many confirmations are in each delivery state (pending = no state yet)."""
    async with store.engine.connect() as conn:
        total = await conn.scalar(select(func.count()).select_from(confirmations)) or 0
        rows = await conn.execute(select(confirmation_deliveries.c.state, func.count())
                                  .group_by(confirmation_deliveries.c.state))
        counts = {r[0]: int(r[1]) for r in rows}
    counts["pending"] = int(total) - sum(counts.values())
    return counts


__all__ = ["OPEN_STATES", "ack", "deliveries", "delivery_counts", "mark", "page", "position",
           "purge", "resolve", "retention_floor", "undelivered"]


# -- push mode -----------------------------------------------------------------------------------

_joined = confirmations.outerjoin(
    confirmation_deliveries,
    confirmation_deliveries.c.confirmation_id == confirmations.c.confirmation_id)


async def undelivered(store: Store, limit: int,
                      exclude_orders: set[str] | frozenset[str] = frozenset()) -> list[Any]:
    """Confirmations the push worker must send (no state yet, or retrying), in cursor order.

    Work orders named in `exclude_orders` (being sent, or waiting for their backoff) are left out,
    and so is every work order with a confirmation in state `error`: its later confirmations wait
    until a supervisor retries or skips the refused one (order per work order).
    """
    errored = select(confirmation_deliveries.c.order_id).where(
        confirmation_deliveries.c.state == "error")
    stmt = (select(confirmations, confirmation_deliveries.c.state.label("delivery"),
                   confirmation_deliveries.c.attempts.label("attempts"))
            .select_from(_joined)
            .where(confirmation_deliveries.c.confirmation_id.is_(None)
                   | (confirmation_deliveries.c.state == "retrying"),
                   confirmations.c.order_id.not_in(errored))
            .order_by(confirmations.c.cursor).limit(limit))
    if exclude_orders:
        stmt = stmt.where(confirmations.c.order_id.not_in(sorted(exclude_orders)))
    async with store.engine.connect() as conn:
        return list(await conn.execute(stmt))


async def mark(store: Store, row: Any, state: str, message: str | None, attempts: int,
               http_status: int | None = None) -> None:
    """Record the outcome of one push attempt (delivered, retrying or error)."""
    now = datetime.now(UTC)
    async with store.transaction() as conn:
        stmt = store.insert(confirmation_deliveries).values(
            confirmation_id=row.confirmation_id, cursor=row.cursor, order_id=row.order_id,
            state=state, message=message, attempts=attempts, updated_at=now,
            http_status=http_status)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["confirmation_id"],
            set_={"state": stmt.excluded.state, "message": stmt.excluded.message,
                  "attempts": stmt.excluded.attempts, "updated_at": stmt.excluded.updated_at,
                  "http_status": stmt.excluded.http_status}))


class NotInError(LookupError):
    """The confirmation has no delivery error to resolve (unknown, or in another state)."""

    def __init__(self, confirmation_id: str, state: str | None) -> None:
        self.confirmation_id = confirmation_id
        self.state = state
        super().__init__(f"confirmation {confirmation_id} is "
                         f"{'unknown' if state == 'unknown' else state or 'pending'}, "
                         "not in delivery error")


async def resolve(store: Store, confirmation_id: str, resolution: str, by: str,
                  reason: str | None) -> Any:
    """A supervisor's decision on a delivery error: `retry` (send it again) or `skip` (the
    work order's later confirmations go on without it). Recorded in the delivery row.

    Raises NotInError unless the confirmation is in state `error`. Returns the updated row.
    """
    if resolution not in ("retry", "skip"):
        raise ValueError(f"resolution is retry or skip, not {resolution!r}")
    now = datetime.now(UTC)
    async with store.transaction() as conn:
        current = (await conn.execute(
            select(confirmations.c.confirmation_id, confirmation_deliveries.c.state)
            .select_from(_joined)
            .where(confirmations.c.confirmation_id == confirmation_id))).first()
        if current is None or current.state != "error":
            raise NotInError(confirmation_id, "unknown" if current is None else current.state)
        # The state check is repeated in the UPDATE, so two supervisors cannot both resolve it.
        result = await conn.execute(
            confirmation_deliveries.update()
            .where(confirmation_deliveries.c.confirmation_id == confirmation_id,
                   confirmation_deliveries.c.state == "error")
            .values(state="retrying" if resolution == "retry" else "skipped",
                    resolution=resolution, resolved_by=by, resolved_at=now,
                    resolution_reason=reason, updated_at=now))
        if not result.rowcount:
            raise NotInError(confirmation_id, None)
    rows = await deliveries(store, confirmation_id=confirmation_id)
    return rows[0]


async def deliveries(store: Store, *, state: str | None = None,
                     confirmation_id: str | None = None, limit: int = 100) -> list[Any]:
    """Delivery rows joined with their confirmation, in cursor order (supervisor's list)."""
    stmt = (select(confirmation_deliveries, confirmations.c.op_no, confirmations.c.work_center,
                   confirmations.c.yield_qty, confirmations.c.scrap_qty,
                   confirmations.c.rework_qty, confirmations.c.reverses)
            .select_from(confirmation_deliveries.join(
                confirmations,
                confirmations.c.confirmation_id == confirmation_deliveries.c.confirmation_id))
            .order_by(confirmation_deliveries.c.cursor).limit(limit))
    if state is not None:
        stmt = stmt.where(confirmation_deliveries.c.state == state)
    if confirmation_id is not None:
        stmt = stmt.where(confirmation_deliveries.c.confirmation_id == confirmation_id)
    async with store.engine.connect() as conn:
        return list(await conn.execute(stmt))
