"""Iteration errors (the trading job, a report) counted in wall time: one ERROR_BURST alert per burst."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.messages import error_burst_event
from trading.events import Event, EventBus
from trading.timezones import utc_now

log = logging.getLogger("bot.notifier")


class ErrorMonitor:
    """Counts iteration errors; publishes ONE ERROR_BURST event when `threshold` errors fall within
    `window`, and none again until a whole window passes without errors (the burst is over)."""

    def __init__(
        self,
        publish: EventBus | Callable[[Event], None],
        window: timedelta = timedelta(minutes=5),
        threshold: int = 20,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"error threshold must be >= 1, got {threshold}")
        if window <= timedelta(0):
            raise ValueError(f"error window must be positive, got {window}")
        self._publish = publish.publish if isinstance(publish, EventBus) else publish
        self.window = window
        self.threshold = threshold
        self.clock = clock
        self._times: deque[datetime] = deque()
        self.alerting = False  # an alert went out and the burst has not cleared yet
        self.total = 0
        self.alerts = 0

    def record(self, error: BaseException | str, now: datetime | None = None) -> bool:
        """Count one error; True when this call published the alert."""
        now = now or self.clock()
        self.total += 1
        if self._times and now - self._times[-1] >= self.window:
            self._times.clear()  # a whole quiet window: the previous burst is over
            self.alerting = False
        self._times.append(now)
        horizon = now - self.window
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        if self.alerting or len(self._times) < self.threshold:
            return False
        self.alerting = True
        self.alerts += 1
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        event = error_burst_event(
            now, count=len(self._times), window=self.window, threshold=self.threshold, last_error=text
        )
        try:
            self._publish(event)
        except Exception:  # the monitor runs inside the error path; it must not raise there
            log.exception("could not publish the error-burst alert")
        return True

    def in_window(self, now: datetime | None = None) -> int:
        """Errors within the window ending now."""
        now = now or self.clock()
        return sum(1 for t in self._times if t > now - self.window)
