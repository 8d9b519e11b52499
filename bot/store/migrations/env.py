"""Alembic environment for the journal.

Two ways in: the app passes an open connection in `config.attributes["connection"]` (see
bot.store.migrate); the `alembic` CLI gives a URL, sync or async, and we connect ourselves.
SQLite cannot ALTER most things, so revisions run in batch mode.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(_configure)
    await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url in alembic.ini or pass -x")
    if make_url(url).get_dialect().is_async:
        asyncio.run(_run_async(url))
    else:
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.begin() as conn:
            _configure(conn)
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
