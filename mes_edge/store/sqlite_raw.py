"""The batch statements (store.batch.WRITES) as plain SQL for the SQLite writer thread.

SQLAlchemy's per-row bind processing costs more than SQLite itself on the commit path
(measured); the writer thread therefore sends each batch's rows through the driver's
executemany, with values converted exactly as SQLAlchemy stores them (so every reader, which
goes through SQLAlchemy, sees the same thing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Date

from mes_edge.domain import Event
from mes_edge.domain.events import event_json
from mes_edge.store.batch import WRITES, BatchWrite, TableWrite
from mes_edge.store.tables import UtcDateTime, events


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
    """A TableWrite as plain SQL: INSERT (ON CONFLICT ... DO UPDATE / DO NOTHING) of whole rows."""

    def __init__(self, write: TableWrite) -> None:
        table, keys = write.table, write.upsert_keys
        self.columns = [c.name for c in table.columns]
        quoted = ", ".join(f'"{c}"' for c in self.columns)
        sql = (f'INSERT INTO "{table.name}" ({quoted}) '
               f"VALUES ({', '.join('?' for _ in self.columns)})")
        if keys:
            if write.accumulate:  # rollups: the stored value plus the new one
                sets = ", ".join(f'"{c}" = "{table.name}"."{c}" + excluded."{c}"'
                                 for c in self.columns if c not in keys)
            else:
                sets = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns if c not in keys)
            conflict = ", ".join(f'"{k}"' for k in keys)
            sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
        elif write.ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        self.sql = sql
        self.write = write
        # This runs for every row of every batch: the values come out of the dict in C
        # (itemgetter), and only the few columns that need it are converted.
        self._values = itemgetter(*self.columns)
        self._conversions = [(i, fn) for i, c in enumerate(table.columns)
                             if (fn := _converter(c.type)) is not None]

    def params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as parameter tuples, in column order, converted for SQLite."""
        values, conversions = self._values, self._conversions
        out: list[tuple[Any, ...]] = []
        for r in rows:
            v = list(values(r))
            for i, fn in conversions:
                v[i] = fn(v[i])
            out.append(tuple(v))
        return out


#: The batch's statements (WRITES, minus the event log, which has its own faster codec below).
RAW_WRITES = tuple(RawStatement(w) for w in WRITES if w.table is not events)

EVENT_COLUMNS = ("seq", "event_id", "type", "work_center", "order_id", "source", "actor",
                 "source_ts", "received_ts", "committed_at", "payload")
assert EVENT_COLUMNS == tuple(c.name for c in events.columns), "event_params is out of date"
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


def raw_batch(b: BatchWrite) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """The statements of one batch as (SQL, parameter tuples), in WRITES' order."""
    if b.event_log:
        yield EVENTS_SQL, event_params(b.event_log, b.committed_at)
    for raw in RAW_WRITES:
        rows = raw.write.rows(b)
        if rows:
            yield raw.sql, raw.params(rows)
