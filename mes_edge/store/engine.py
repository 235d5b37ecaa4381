"""Engines for SQLite (WAL, synchronous=FULL) and PostgreSQL (asyncpg), and schema upgrades."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> URL:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async drivers."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    return u


def is_sqlite(url: str | URL) -> bool:
    """True for a SQLite URL."""
    return make_url(str(url) if isinstance(url, URL) else url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL + synchronous=FULL: a committed transaction survives power loss (fsync on commit).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def json_serializer(value: Any) -> str:
    """JSON columns via orjson: several times faster than json.dumps on the commit path."""
    return orjson.dumps(value).decode()


#: Connections kept open in the pool. API requests take them for their reads (the token
#: lookup, read models) and for the audit lines (group-committed: store/audit.AuditWriter),
#: besides the dispatcher's commit, so the pool must cover the requests that run at once: when
#: it was 5 (+5 overflow) and every audit line was a transaction of its own, and a dozen
#: stations posted at the same time, connections beyond the pool were opened and closed again
#: all the time - on PostgreSQL a new server session about every fifth transaction, each a new
#: asyncpg connection with its own codecs and statement cache, and the service's RSS grew with
#: the churn (issue 14). Connections are opened on demand and then kept, so an idle service
#: keeps only what its busiest moment needed.
POOL_SIZE = 20
#: Opened beyond POOL_SIZE for a burst and closed when returned.
MAX_OVERFLOW = 10


def create_engine(url: str) -> AsyncEngine:
    """An async engine for the URL, with the durability settings of this project."""
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            u,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            json_serializer=json_serializer,
            json_deserializer=orjson.loads,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        u,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_pre_ping=True,
        json_serializer=json_serializer,
        json_deserializer=orjson.loads,
    )


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations, without an alembic.ini."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).render_as_string(hide_password=False))
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (blocking; call from a thread or the CLI)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` without blocking the event loop."""
    await asyncio.to_thread(upgrade_sync, url, revision)
