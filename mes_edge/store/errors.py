"""Which database errors are failures of the storage itself, never the fault of the data.

A storage failure (connection lost or refused, server shutting down, disk full, database locked,
I/O error, read-only after a fail-over) means: keep the batch, wait, retry. Anything else that a
write raises (a constraint, a value the column cannot hold) is about the rows being written and
may be isolated to the one event that carries them.
"""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import exc as sa_exc

#: PostgreSQL SQLSTATE classes and codes that say "the server / its storage", not "your data":
#: 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
#: connections), 57 operator intervention (admin / crash shutdown, cannot connect now),
#: 58 system error (I/O), 25006 read-only transaction (a standby after fail-over),
#: 40001 / 40P01 serialization failure / deadlock (retry the transaction).
_PG_CLASSES = ("08", "53", "57", "58")
_PG_CODES = {"25006", "40001", "40P01"}

#: SQLite primary result codes of storage trouble: BUSY, LOCKED, NOMEM, READONLY, IOERR,
#: CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB.
_SQLITE_CODES = {5, 6, 7, 8, 10, 11, 13, 14, 15, 26}
_SQLITE_TEXTS = ("locked", "disk i/o", "disk is full", "readonly", "unable to open",
                 "malformed", "not a database", "out of memory")


def _chain(err: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped (`orig`) and its causes, without cycles."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo and len(seen) < 12:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo.extend([getattr(e, "orig", None), e.__cause__, e.__context__])
    return seen


def _one(e: BaseException) -> bool:
    if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError
                  | sa_exc.TimeoutError | sa_exc.ResourceClosedError):
        return True
    if isinstance(e, OSError | asyncio.TimeoutError | ConnectionError | MemoryError):
        return True  # includes ConnectionRefusedError, BrokenPipeError, TimeoutError, ENOSPC
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None and (code & 0xFF) in _SQLITE_CODES:
            return True
        if isinstance(e, sqlite3.OperationalError | sqlite3.InterfaceError):
            text = str(e).lower()
            return any(t in text for t in _SQLITE_TEXTS)
        return False
    sqlstate = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
    if isinstance(sqlstate, str) and (sqlstate[:2] in _PG_CLASSES or sqlstate in _PG_CODES):
        return True
    module = type(e).__module__
    name = type(e).__name__
    if module.startswith("asyncpg") and name in (
            "InterfaceError", "ConnectionDoesNotExistError", "InternalClientError",
            "ProtocolError", "ConnectionFailureError"):
        return True
    return False


def is_storage_failure(err: BaseException) -> bool:
    """True if `err` (or what it wraps) is a failure of the database, not of the data."""
    return any(_one(e) for e in _chain(err))


def describe(err: BaseException) -> str:
    """One line for the log and /readyz: the innermost informative message."""
    chain = _chain(err)
    inner = chain[-1] if len(chain) > 1 else err
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}"[:300] if text else type(inner).__name__
