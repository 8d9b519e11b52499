"""Run the Alembic migrations programmatically, so the app brings its database up to date on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer version of the bot than this one."""


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    current = MigrationContext.configure(connection).get_current_revision()
    script = ScriptDirectory.from_config(cfg)
    if current is not None and current not in {r.revision for r in script.walk_revisions()}:
        raise SchemaTooNewError(
            f"database schema revision {current!r} is unknown to this code (head {script.get_current_head()!r}); "
            "it was written by a newer version of the bot: upgrade the bot or use another database file"
        )
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade_database(url: str, revision: str = "head") -> None:
    """`alembic upgrade head` on an async URL (sqlite+aiosqlite:///path); creates the file if absent."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config(url), revision)
    finally:
        await engine.dispose()
