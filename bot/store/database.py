"""The journal's SQLite file: open (migrated, WAL on), close, one write transaction at a time, reads.

Write before you report: each write commits its own transaction before the caller's method returns,
so a message about a trade can only go out after the row is on disk. Writes are serialised by one
asyncio lock (SQLite has one writer anyway); reads run concurrently under WAL. The journal's record
families (`bot.store.trade_log`, `bot.store.state_store`, `bot.store.journal`) build on this class.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.store.health import JournalHealth, JournalWriteError, write_failure
from bot.store.migrate import upgrade_database

XAU_PIP = 0.1  # gold pip as the original bot counts it: $0.10 per ounce


class JournalClosedError(RuntimeError):
    """The journal was used before open() or after close()."""


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a commit survives the process dying (Ctrl-C, kill -9, a crash); only an OS crash or
    # power loss can drop the last commits; the start-up reconcile then re-books trades from the broker's deals
    # and adopts positions it does not know (`bot/reconcile.py`)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class JournalDatabase:
    """The connection every part of the journal writes and reads through."""

    def __init__(self, path: str | Path, *, pip_size: float = XAU_PIP) -> None:
        if str(path) in {"", ":memory:"}:
            raise ValueError(
                "the journal needs a database file path (an in-memory database cannot be migrated)"
            )
        if pip_size <= 0:
            raise ValueError(f"pip_size must be > 0, got {pip_size}")
        self.path = Path(path)
        self.url = f"sqlite+aiosqlite:///{self.path}"
        self.pip_size = pip_size
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._write_lock = asyncio.Lock()
        self.health = JournalHealth(str(self.path))

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> Self:
        """Create the file if needed, bring the schema to head, connect with WAL on."""
        if self._engine is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if migrate:
            await upgrade_database(self.url)
        engine = create_async_engine(self.url)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()  # bound to the loop that opened us
        return self

    async def close(self, grace: float = 5.0) -> None:
        """Dispose of the pool last: a write in progress (another task's) commits first, up to `grace`
        seconds, so its connection is not closed under it."""
        if self._engine is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._write_lock.acquire(), grace)
                self._write_lock.release()
            await self._engine.dispose()
        self._engine = None
        self._sessions = None

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _maker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise JournalClosedError("journal is not open (call await journal.open())")
        return self._sessions

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed before the caller's method returns; rolled back on error. A write
        the database cannot take (read-only, disk full...) raises JournalWriteError and recycles the pool."""
        maker = self._maker()
        async with self._write_lock:
            try:
                async with maker() as session, session.begin():
                    yield session
            except Exception as exc:
                error = write_failure(exc)
                if error is None:
                    raise
                self.health.failed(exc, error)
                if self._engine is not None:  # SQLite keeps a connection opened during the fault read-only
                    await self._engine.dispose()
                raise JournalWriteError(str(self.path), error) from exc
            self.health.succeeded()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._maker()() as session:
            yield session

    async def sqlite_settings(self) -> dict[str, Any]:
        """journal_mode, synchronous and foreign_keys as a connection of this journal sees them."""
        async with self._read() as s:
            mode = (await s.execute(text("PRAGMA journal_mode"))).scalar_one()
            sync = (await s.execute(text("PRAGMA synchronous"))).scalar_one()
            fks = (await s.execute(text("PRAGMA foreign_keys"))).scalar_one()
        return {"journal_mode": str(mode).lower(), "synchronous": int(sync), "foreign_keys": bool(fks)}
