"""Durable store: SQLAlchemy 2 Core tables, Alembic migrations, SQLite (WAL) or PostgreSQL."""

from mes_edge.store.engine import create_engine, is_sqlite, normalise_url, upgrade, upgrade_sync
from mes_edge.store.repository import BatchWrite, Loaded, Store

__all__ = ["BatchWrite", "Loaded", "Store", "create_engine", "is_sqlite", "normalise_url",
           "upgrade", "upgrade_sync"]
