"""The last log lines in memory, for /logs and /health (a logging handler on the root logger)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime

from trading.timezones import to_wib


class LogBuffer(logging.Handler):
    """Keeps the newest `capacity` records as one-line strings with the WIB time; thread-safe."""

    def __init__(self, capacity: int = 500, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._records: deque[tuple[int, float, str]] = deque(maxlen=capacity)
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            when = to_wib(datetime.fromtimestamp(record.created, UTC)).strftime("%H:%M:%S")
            line = (
                f"{when} {record.levelname[:4]} {record.name}: {message.splitlines()[0] if message else ''}"
            )
            with self._lock_lines:
                self._records.append((record.levelno, record.created, line))
        except Exception:  # a log handler must never raise into the code that logs
            self.handleError(record)

    def lines(self, n: int, min_level: int = 0) -> list[str]:
        """The newest n lines at `min_level` or above, oldest first."""
        with self._lock_lines:
            picked = [line for level, _, line in self._records if level >= min_level]
        return picked[-n:] if n > 0 else []

    def count_since(self, since_epoch: float, min_level: int = logging.WARNING) -> int:
        with self._lock_lines:
            return sum(1 for level, t, _ in self._records if level >= min_level and t >= since_epoch)


def install(capacity: int = 500) -> LogBuffer:
    """The root logger's LogBuffer (added once per process)."""
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, LogBuffer):
            return h
    buffer = LogBuffer(capacity)
    root.addHandler(buffer)
    return buffer
