"""A Telegram outage as the courier (bot.courier) lives through it: since when, how many tries failed,
and the wait before the next one (a 429's `retry_after`, else a capped backoff that a nudge cuts
short). One WARNING when it starts, one INFO when it ends, DEBUG in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.retry import Backoff
from bot.transport import SendResult

log = logging.getLogger("bot.notifier")


class Outage:
    def __init__(
        self, backoff: Backoff | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self.down_since: float | None = None  # monotonic time of the first failed try of this outage
        self.tries = 0  # failed tries in this outage
        self.count = 0  # outages so far
        self._napping: asyncio.Future[None] | None = None  # the backoff wait in progress

    async def wait_out(self, result: SendResult, waiting: int) -> bool:
        """Wait before the next try after a passing fault (`waiting`: letters in line, for the log).
        True when this failure began an outage."""
        if result.retry_after is not None:
            if self.tries == 0:
                log.info(
                    "Telegram rate limit: waiting %s s (%d message(s) waiting)", result.retry_after, waiting
                )
            await self._sleep(result.retry_after)
            return False
        self.tries += 1
        began = self.down_since is None
        if began:
            self.down_since = time.monotonic()
            self.count += 1
            log.warning(
                "Telegram unreachable: %s; %d message(s) waiting, retrying (backoff %g s up to %g s)",
                result.error,
                waiting,
                self.backoff.first,
                self.backoff.cap,
            )
        else:
            log.debug("Telegram still unreachable (try %d): %s", self.tries, result.error)
        await self._nap(self.backoff.delay(self.tries))
        return began

    async def _nap(self, seconds: float) -> None:
        """The backoff wait; `nudge()` ends it early."""
        self._napping = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait([self._napping])  # a nudge cancels the nap, not the waiting task
        finally:
            self._napping.cancel()
            self._napping = None

    def nudge(self) -> None:
        """Telegram answers again (polling got through): retry now instead of at the end of the backoff."""
        if self._napping is not None and not self._napping.done():
            self._napping.cancel()

    def recovered(self, waiting: int) -> None:
        """A try went through (or was refused for good: Telegram answered)."""
        if self.down_since is not None:
            log.info(
                "Telegram reachable again after %.0f s and %d failed tries; %d message(s) waiting",
                time.monotonic() - self.down_since,
                self.tries,
                waiting,
            )
        self.down_since = None
        self.tries = 0
