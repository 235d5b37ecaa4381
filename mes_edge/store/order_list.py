"""The work-order list of the ERP API, read from the database (issue 14).

Every order the service ever had is a `work_orders` row: the dispatcher writes it in the same
transaction as the event that changed it (store/batch.py, WRITES), and merges the change into its
memory only after that commit, so the table is never behind what memory shows. Closed and
cancelled orders leave memory after `history.evict_closed_after_s`; the table keeps them. Serving
the list from here costs one index range scan per status asked for, whatever the number of
orders: most recently changed first, paged by a keyset cursor on (updated_at, order_id).
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, desc, or_, select

from mes_edge.domain import WorkOrder
from mes_edge.store import codec
from mes_edge.store.repository import Store
from mes_edge.store.tables import work_orders

#: A cursor is a few dozen characters; anything much longer is not one of ours.
CURSOR_MAX = 400
_ID_MAX = 64

Key = tuple[datetime | None, str]  # (updated_at, order_id) of the last order of a page


class BadCursor(ValueError):
    """The `before` cursor was not made by this service."""


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of orders, most recently changed first; `next_cursor` continues with older
    ones (None: this was the last page)."""

    orders: list[WorkOrder]
    next_cursor: str | None


def encode_cursor(key: Key) -> str:
    """An opaque cursor that continues after `key`."""
    ts, order_id = key
    raw = orjson.dumps([ts.astimezone(UTC).isoformat() if ts is not None else None, order_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Key:
    """The key a cursor continues after (BadCursor when it is not one of ours)."""
    try:
        if len(text) > CURSOR_MAX:
            raise ValueError("too long")
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        ts_text, order_id = data
        if not isinstance(order_id, str) or not 0 < len(order_id) <= _ID_MAX:
            raise ValueError("order id")
        if ts_text is None:
            return None, order_id
        if not isinstance(ts_text, str):
            raise ValueError("time")
        ts = datetime.fromisoformat(ts_text)
        if ts.tzinfo is None:
            raise ValueError("time without zone")
        return ts.astimezone(UTC), order_id
    except (ValueError, TypeError, orjson.JSONDecodeError) as err:
        raise BadCursor(f"not a work-order list cursor: {err}") from err


def _desc(key: Key) -> tuple[int, float, str]:
    """A sort key giving the list's order when sorted DESCENDING: timestamped orders newest
    first, then (never in practice: every order gets one when received) orders without one."""
    ts, order_id = key
    return (1, ts.timestamp(), order_id) if ts is not None else (0, 0.0, order_id)


async def list_orders(store: Store, *, statuses: Sequence[str] | None = None,
                      changed_since: datetime | None = None, limit: int = 100,
                      before: str | None = None) -> OrderPage:
    """Orders (in memory or not) filtered by status and by last change, most recently changed
    first, at most `limit`; `before` is the `next_cursor` of the previous page."""
    after: Key | None = decode_cursor(before) if before else None
    wanted = limit + 1  # one more tells whether another page follows
    c = work_orders.c
    status_sets: list[Sequence[str] | None] = (
        [[s] for s in dict.fromkeys(statuses)] if statuses else [None])
    rows: list[Any] = []
    async with store.engine.connect() as conn:
        # Phase 1: orders with a change time, newest first. One query per status, so each is a
        # range scan of the (status, updated_at, order_id) index; merged here (k x limit rows).
        if after is None or after[0] is not None:
            for status in status_sets:
                query = (select(c.order_id, c.updated_at, c.state)
                         .where(c.updated_at.is_not(None))
                         .order_by(desc(c.updated_at), desc(c.order_id)).limit(wanted))
                if status is not None:
                    query = query.where(c.status.in_(status))
                if changed_since is not None:
                    query = query.where(c.updated_at > changed_since)
                if after is not None:
                    ts, oid = after
                    query = query.where(c.updated_at <= ts,
                                        or_(c.updated_at < ts, and_(c.updated_at == ts,
                                                                    c.order_id < oid)))
                rows.extend((await conn.execute(query)).all())
            rows = heapq.nlargest(wanted, rows, key=lambda r: _desc((r.updated_at, r.order_id)))
        # Phase 2: orders without a change time (a row written before they had one), by id.
        if len(rows) < wanted and changed_since is None:
            query = (select(c.order_id, c.updated_at, c.state).where(c.updated_at.is_(None))
                     .order_by(desc(c.order_id)).limit(wanted - len(rows)))
            if statuses:
                query = query.where(c.status.in_(list(statuses)))
            if after is not None and after[0] is None:
                query = query.where(c.order_id < after[1])
            rows.extend((await conn.execute(query)).all())
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page else None
    return OrderPage(
        orders=[codec.order_from_json(r.state) for r in page],
        next_cursor=encode_cursor((last.updated_at, last.order_id)) if more and last else None)
