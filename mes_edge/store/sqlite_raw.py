"""The batch statements as plain SQL for the SQLite writer thread.

SQLAlchemy's per-row bind processing costs more than SQLite itself on the commit path
(measured); the writer thread therefore sends each batch's rows through the driver's
executemany, with values converted exactly as SQLAlchemy stores them (so every reader, which
goes through SQLAlchemy, sees the same thing).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Date, Table

from mes_edge.domain import Event
from mes_edge.domain.events import event_json
from mes_edge.store.tables import UtcDateTime


def sqlite_timestamp(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores for a UTC datetime (naive, microseconds)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is several times faster than strftime and gives the same text.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _converter(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UtcDateTime):
        return sqlite_timestamp
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, Boolean):
        return _bool
    if isinstance(column_type, Date):
        return _date
    return None


class RawStatement:
    """INSERT (optionally ON CONFLICT ... DO UPDATE / DO NOTHING) of whole rows of a table."""

    def __init__(self, table: Table, *, upsert_keys: list[str] | None = None,
                 ignore_conflicts: bool = False) -> None:
        self.columns = [c.name for c in table.columns]
        quoted = ", ".join(f'"{c}"' for c in self.columns)
        sql = (f'INSERT INTO "{table.name}" ({quoted}) '
               f"VALUES ({', '.join('?' for _ in self.columns)})")
        if upsert_keys:
            keys = ", ".join(f'"{k}"' for k in upsert_keys)
            sets = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns
                             if c not in upsert_keys)
            sql += f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        elif ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        self.sql = sql
        # One generated function per table turns a row dict into its parameter tuple: this
        # runs for every row of every batch.
        scope: dict[str, Any] = {}
        items = []
        for i, c in enumerate(table.columns):
            fn = _converter(c.type)
            if fn is None:
                items.append(f"r[{c.name!r}]")
            else:
                scope[f"f{i}"] = fn
                items.append(f"f{i}(r[{c.name!r}])")
        exec(f"def row(r):\n    return ({', '.join(items)},)", scope)
        self._row: Callable[[dict[str, Any]], tuple[Any, ...]] = scope["row"]

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as parameter tuples, in column order, converted for SQLite."""
        row = self._row
        return [row(r) for r in rows]


EVENT_COLUMNS = ("seq", "event_id", "type", "work_center", "order_id", "source", "actor",
                 "source_ts", "received_ts", "committed_at", "payload")
EVENTS_SQL = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
              f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})")


def event_params(log: list[tuple[int, Event]], committed_at: datetime | None,
                 ) -> list[tuple[Any, ...]]:
    """Event-log rows as parameter tuples; the payload is event_to_json's document, written
    by pydantic's serializer straight to JSON text (the hottest insert of all)."""
    committed = sqlite_timestamp(committed_at)
    return [(seq, e.event_id, e.kind, e.work_center_ref, e.order_ref, e.source, e.actor,
             sqlite_timestamp(e.source_ts), sqlite_timestamp(e.received_ts), committed,
             event_json(e)) for seq, e in log]
