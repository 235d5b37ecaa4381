"""Read models for the API: the queries behind the board and the ERP endpoints.

The HTTP layer asks for what it shows; the SQL lives here, next to the tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import desc, select, text

from mes_edge.domain import WorkOrder
from mes_edge.store.repository import Store
from mes_edge.store.tables import confirmations, rejected_events


async def latest_rejections(store: Store, limit: int, work_center: str | None = None,
                            before: int | None = None) -> list[Any]:
    """rejected_events rows, newest first (older pages: ids below `before`)."""
    query = select(rejected_events).order_by(desc(rejected_events.c.id)).limit(limit)
    if work_center is not None:
        query = query.where(rejected_events.c.work_center == work_center)
    if before is not None:
        query = query.where(rejected_events.c.id < before)
    async with store.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def work_order(store: Store, order_id: str) -> WorkOrder | None:
    """An order as the database has it (closed and cancelled orders leave the service's memory
    after `history.evict_closed_after_s`; their history stays here)."""
    found, _ = await store.load_orders([order_id])
    return found[0] if found else None


async def confirmation(store: Store, confirmation_id: str | None) -> Any | None:
    """The confirmations row of one confirmation id, or None."""
    if confirmation_id is None:
        return None
    rows = await store.rows(confirmations, confirmations.c.confirmation_id == confirmation_id)
    return rows[0] if rows else None


async def reversal_of(store: Store, order_id: str, confirmation_id: str) -> Any | None:
    """The confirmations row that reverses this confirmation of this order, or None."""
    rows = await store.rows(confirmations, confirmations.c.order_id == order_id,
                            confirmations.c.reverses == confirmation_id)
    return rows[0] if rows else None


async def ping(store: Store) -> None:
    """One round trip to the database (raises when it is not reachable)."""
    async with store.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
