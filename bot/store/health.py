"""Whether the journal can write, and how a failed write is told: the first failure of an outage is one
ERROR line with its traceback, later ones at most one short WARNING a minute, the first write that
succeeds again ends the outage (one WARNING). The pool is recycled after every failed write (see
`Journal._write`), so a connection SQLite opened read-only during the fault is not reused after it.

`write_failure` says which errors mean "the database cannot take writes": SQLite's operational errors
(read-only file, disk full, I/O error, locked, cannot open) and a corrupt file; a constraint violation
or a bad value is a bug of the caller, not a fault of the journal.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exc as sa_exc

from trading.timezones import utc_now

log = logging.getLogger("bot.store.journal")
LOG_EVERY = 60.0  # seconds between two "still cannot write" lines of one outage


class JournalWriteError(RuntimeError):
    """A journal write was not committed because the database cannot take writes (already logged)."""

    def __init__(self, path: str, error: str) -> None:
        super().__init__(f"journal {path} cannot write: {error}")
        self.path, self.error = path, error


def write_failure(exc: BaseException) -> str | None:
    """SQLite's message when `exc` means the database cannot take writes; None for any other error."""
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.ProgrammingError | sa_exc.DataError):
        return None
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(orig, sqlite3.OperationalError) or type(orig) is sqlite3.DatabaseError:
        return str(orig) or type(orig).__name__
    if isinstance(exc, sa_exc.OperationalError):
        return str(orig)
    return None


HealthListener = Callable[
    ["JournalHealth", bool], None
]  # (health, True: an outage started / False: it ended)


@dataclass
class JournalHealth:
    """The journal's write state. `held` is set by the engine's recorder (bot.journal_guard): what it
    keeps in memory until the journal takes it."""

    path: str
    clock: Callable[[], datetime] = utc_now
    wall: Callable[[], float] = time.monotonic
    failing_since: datetime | None = None
    error: str = ""
    failed_writes: int = 0  # in the current outage
    held: tuple[str, ...] = ()
    listeners: list[HealthListener] = field(default_factory=list)
    _logged_at: float = -math.inf
    _unlogged: int = 0

    @property
    def writable(self) -> bool:
        return self.failing_since is None

    @property
    def entries_blocked(self) -> str:
        """Why new entries wait for the journal ("" when they need not)."""
        if self.failing_since is not None:
            return f"the journal cannot write ({self.error})"
        if self.held:
            return f"{len(self.held)} booking(s) still to be written to the journal"
        return ""

    def failed(self, exc: BaseException, error: str) -> None:
        self.failed_writes += 1
        if self.failing_since is None:
            self.failing_since, self.error = self.clock(), error
            self._logged_at, self._unlogged = self.wall(), 0
            log.error(
                "journal %s cannot write: %s; new entries stop until it can (open positions keep their "
                "broker stops, closes are kept in memory)",
                self.path,
                error,
                exc_info=exc,
            )
            self._tell(True)
            return
        self.error = error
        self._unlogged += 1
        if self.wall() - self._logged_at >= LOG_EVERY:
            log.warning(
                "journal %s still cannot write: %d more failed write(s): %s", self.path, self._unlogged, error
            )
            self._logged_at, self._unlogged = self.wall(), 0

    def succeeded(self) -> None:
        if self.failing_since is None:
            return
        down = (self.clock() - self.failing_since).total_seconds()
        log.warning(
            "journal %s writes again after %.0f s (%d failed write(s))", self.path, down, self.failed_writes
        )
        self.failing_since, self.error, self.failed_writes = None, "", 0
        self._tell(False)

    def _tell(self, started: bool) -> None:
        for listener in list(self.listeners):
            try:
                listener(self, started)
            except Exception:  # a listener must not turn a journal fault into a crash
                log.exception("journal health listener failed")


__all__ = ["JournalHealth", "JournalWriteError", "write_failure"]
