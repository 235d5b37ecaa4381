"""Durable store: SQLAlchemy 2 Core tables, Alembic migrations, SQLite (WAL) or PostgreSQL."""

from mes_edge.store.batch import BatchWrite, Refusal, Verdict
from mes_edge.store.engine import create_engine, is_sqlite, normalise_url, upgrade, upgrade_sync
from mes_edge.store.repository import Loaded, Store

__all__ = ["BatchWrite", "Loaded", "Refusal", "Store", "Verdict", "create_engine", "is_sqlite",
           "normalise_url", "upgrade", "upgrade_sync"]
