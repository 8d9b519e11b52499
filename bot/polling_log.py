"""One log line per polling outage instead of aiogram's ERROR and WARNING on every failed getUpdates.

aiogram's dispatcher logs "Failed to fetch updates - …" (ERROR) and "Sleep for … try again" (WARNING)
for each try while Telegram is unreachable, and "Connection established" (INFO) when it is back. The
filter keeps the first failure as one WARNING, drops the repeats, and lets the recovery line through;
the notifier's own outage lines (bot.courier) say the rest.
"""

from __future__ import annotations

import logging

DISPATCHER_LOGGER = "aiogram.dispatcher"


class PollingOutageFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Failed to fetch updates"):
            if self.down:
                self.dropped += 1
                return False
            self.down = True
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = f"Telegram polling: {message}; retrying quietly until it is back", ()
            return True
        if message.startswith("Sleep for ") and "try again" in message:
            self.dropped += 1
            return False
        if message.startswith("Connection established"):
            self.down = False
        return True


def install() -> PollingOutageFilter:
    """Add the filter to aiogram's dispatcher logger once (again: the one already there)."""
    logger = logging.getLogger(DISPATCHER_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, PollingOutageFilter):
            return existing
    quiet = PollingOutageFilter()
    logger.addFilter(quiet)
    return quiet


__all__ = ["PollingOutageFilter", "install"]
