"""Create a fresh database on an externally given PostgreSQL (MES_TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url


def fresh_database_from_url(url: str, name: str) -> str:
    """Create database `name` on the server of `url` and return its asyncpg URL."""
    u = make_url(url)

    async def create() -> None:
        conn = await asyncpg.connect(
            host=u.host,
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            database=u.database or "postgres",
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return u.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )
