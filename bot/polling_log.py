"""One log line per polling outage instead of aiogram's ERROR and WARNING on every failed getUpdates.

aiogram's dispatcher logs "Failed to fetch updates - …" (ERROR) and "Sleep for … try again" (WARNING)
for each try while Telegram is unreachable, and "Connection established" (INFO) when it is back. The
filter keeps the first failure as one WARNING, drops the repeats, and lets the recovery line through;
the notifier's own outage lines (bot.courier) say the rest. aiogram has no other signal that polling
got through again, so the filter also calls `on_recovery` then (the app nudges the notifier's courier
to retry at once instead of at the end of its backoff). To see that INFO line the dispatcher logger
is opened to INFO, and the filter holds back the other INFO lines below the level it had before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

DISPATCHER_LOGGER = "aiogram.dispatcher"


class PollingOutageFilter(logging.Filter):
    def __init__(self, threshold: int = logging.WARNING) -> None:
        super().__init__()
        self.threshold = threshold  # the dispatcher logger's level before install(): what else passes
        self.down = False
        self.dropped = 0
        self.on_recovery: Callable[[], None] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Failed to fetch updates"):
            if self.down:
                self.dropped += 1
                return False
            self.down = True
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            first = message.splitlines()[0][:300]  # an HTML error page follows a decode error: not logged
            record.msg, record.args = f"Telegram polling: {first}; retrying quietly until it is back", ()
            return True
        if message.startswith("Sleep for ") and "try again" in message:
            self.dropped += 1
            return False
        if message.startswith("Connection established"):
            self.down = False
            if self.on_recovery is not None:
                try:
                    self.on_recovery()
                except Exception as exc:  # a log filter must never raise
                    record.msg, record.args = f"{message} (recovery hook failed: {exc})", ()
            return logging.getLogger().isEnabledFor(record.levelno)  # shown as the app's own INFO lines are
        return record.levelno >= self.threshold


def install() -> PollingOutageFilter:
    """Add the filter to aiogram's dispatcher logger once (again: the one already there)."""
    logger = logging.getLogger(DISPATCHER_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, PollingOutageFilter):
            return existing
    quiet = PollingOutageFilter(logger.getEffectiveLevel())
    logger.addFilter(quiet)
    logger.setLevel(min(logging.INFO, quiet.threshold))
    return quiet


__all__ = ["PollingOutageFilter", "install"]
