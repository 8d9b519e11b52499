"""Journal faults for tests, injected where SQLite meets them (tests run as root, where chmod stops no write).

- `ReadOnlyFile`: the database file turned read-only. Every connection used while it lasts is switched
  to `PRAGMA query_only` for the rest of its life, so SQLite answers "attempt to write a readonly
  database" exactly as it does on a write-protected file; like SQLite on such a file, a connection
  opened during the fault stays read-only after it (only a new connection writes again).
- `DiskFull`: every write statement fails in the driver with SQLite's own "database or disk is full"
  (sqlite3.OperationalError, wrapped by SQLAlchemy as a real one is) while it lasts.
- `tiny_tmpfs`: a real filesystem of a few hundred KB (root and mount(8) needed; skipped otherwise)
  to fill up for real.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class ReadOnlyFile:
    def __init__(self, journal: Any) -> None:
        self.on = False
        event.listen(journal._engine.sync_engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if self.on:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()


class DiskFull:
    def __init__(self, journal: Any) -> None:
        self.on = False
        self.refused = 0
        event.listen(journal._engine.sync_engine, "before_cursor_execute", self._execute)

    def _execute(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if self.on and statement.lstrip().upper().startswith(WRITES):
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size_kb: int = 512) -> Iterator[Path]:
    """A tmpfs of `size_kb` mounted at `where` (skips the test when it cannot be mounted)."""
    import pytest

    if shutil.which("mount") is None:
        pytest.skip("no mount(8)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Fill the filesystem of `directory` to the last byte with one file (delete it to free the space)."""
    path = directory / name
    with path.open("wb", buffering=0) as fh:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while fh.write(b"\0" * size):
                    pass
    return path
