"""The outgoing notification queue: engine events and ad-hoc messages to one chat, in order.

`Notifier.attach(bus)` subscribes to the EventBus and starts a worker task. The engine only ever
calls the bus's non-blocking `publish`; when the notifier falls behind, the bus drops the oldest
queued item for this subscriber and counts it (`bus.dropped`). The worker renders each event with
`bot.messages.render_event`, splits long texts under Telegram's limit and sends through a
`Transport`; a failing formatter or transport is logged and the worker carries on.
Per-kind switches: quiet kinds are sent silently, muted kinds are not sent.

`ErrorMonitor` turns a stream of iteration errors into at most one ERROR_BURST event per burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.messages import error_burst_event, fallback_text, render_event
from bot.transport import Transport, split_message
from trading.events import Event, EventBus, EventKind
from trading.timezones import utc_now

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4000  # under Telegram's 4096, with room for entities counted in UTF-16
SWITCH_VALUES = ("on", "silent", "off")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An ad-hoc message (a report, a command's late answer): text, or a photo with a caption."""

    html: str
    silent: bool = False
    png: bytes | None = None


class _Stop:
    """Queue sentinel: everything queued before it is sent, then the worker ends."""


class _Wake:
    """Queue sentinel: the worker re-reads `Notifier.queue` (after attach swapped it)."""


_STOP, _WAKE = _Stop(), _Wake()
QueueItem = Event | Outgoing | _Stop | _Wake


def parse_switches(switches: Mapping[str, str]) -> tuple[frozenset[EventKind], frozenset[EventKind]]:
    """Settings' per-event switches {"trade_closed": "on", "sl_moved": "silent", "info": "off"} ->
    (quiet_kinds, muted_kinds). An unknown kind or value raises ValueError naming it."""
    quiet, muted = set(), set()
    for name, value in switches.items():
        try:
            kind = EventKind(name.strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in EventKind)
            raise ValueError(f"notification switch {name!r}: unknown event kind (known: {known})") from None
        v = value.strip().lower()
        if v not in SWITCH_VALUES:
            raise ValueError(f"notification switch {name}={value!r}: use one of {', '.join(SWITCH_VALUES)}")
        if v == "silent":
            quiet.add(kind)
        elif v == "off":
            muted.add(kind)
    return frozenset(quiet), frozenset(muted)


class Notifier:
    def __init__(
        self,
        transport: Transport,
        chat_id: int,
        quiet_kinds: Iterable[EventKind | str] = frozenset(),
        muted_kinds: Iterable[EventKind | str] = frozenset(),
        *,
        maxsize: int = 1000,
        limit: int = MESSAGE_LIMIT,
    ) -> None:
        self.transport = transport
        self.chat_id = chat_id
        self.quiet_kinds = frozenset(EventKind(k) for k in quiet_kinds)
        self.muted_kinds = frozenset(EventKind(k) for k in muted_kinds)
        self.limit = limit
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self._bus: EventBus | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_when_empty = False
        self.sent = 0  # messages (parts) handed to the transport and accepted
        self.failed = 0  # sends the transport dropped or that raised, and formatter errors
        self.skipped = 0  # muted or not-notified events
        self.dropped = 0  # ad-hoc messages dropped on overflow, and items left at stop()

    # ------------------------------------------------------------------ wiring

    def attach(self, bus: EventBus) -> None:
        """Subscribe to the bus (items already queued move over, in order) and start the worker."""
        if self._bus is not None:
            raise RuntimeError("notifier is already attached to a bus")
        q, old = bus.subscribe(), self.queue
        while not old.empty():
            self._put(q, old.get_nowait())
        self.queue, self._bus = q, bus
        if self.running:
            old.put_nowait(_WAKE)  # the worker may be waiting on the old queue
        self.start()

    def start(self) -> None:
        """Start the worker task (attach does this); needs a running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="notifier")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ producers (never block)

    def notify_event(self, event: Event) -> None:
        """Queue an event directly (for events that do not go through the bus)."""
        self._put(self.queue, event)

    def notify_text(self, html: str, silent: bool = False) -> None:
        """Queue an ad-hoc HTML message (split when long)."""
        self._put(self.queue, Outgoing(html, silent))

    def notify_photo(self, png: bytes, caption_html: str = "", silent: bool = False) -> None:
        self._put(self.queue, Outgoing(caption_html, silent, png))

    def _put(self, q: asyncio.Queue[Any], item: QueueItem) -> None:
        if q.full():  # same policy as the bus: the oldest item goes
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
                self.dropped += 1
        q.put_nowait(item)

    # ------------------------------------------------------------------ worker

    async def run(self) -> None:
        """Send queued items in order until the stop sentinel arrives."""
        while True:
            item = await self.queue.get()
            if isinstance(item, _Stop):
                return
            if isinstance(item, _Wake):
                continue
            try:
                await self._handle(item)
            except Exception:  # a bug in one message must not end the worker
                self.failed += 1
                log.exception("notification failed")
            if self._stop_when_empty and self.queue.empty():
                return

    async def _handle(self, item: Event | Outgoing) -> None:
        if isinstance(item, Outgoing):
            if item.png is not None:
                await self._send_photo(item.png, item.html, item.silent)
            else:
                await self._send_text(item.html, item.silent)
            return
        if item.kind in self.muted_kinds:
            self.skipped += 1
            return
        try:
            rendered = render_event(item)
        except Exception:
            self.failed += 1
            log.exception("could not format %s event; sending its summary", item.kind)
            await self._send_text(fallback_text(item), item.kind in self.quiet_kinds)
            return
        if rendered is None:
            self.skipped += 1
            return
        await self._send_text(rendered.html, rendered.silent or item.kind in self.quiet_kinds)

    async def _send_text(self, html: str, silent: bool) -> None:
        for part in split_message(html, self.limit):
            try:
                message_id = await self.transport.send_text(self.chat_id, part, silent)
            except Exception:
                message_id = None
                log.exception("transport raised on send_text")
            if message_id is None:
                self.failed += 1
            else:
                self.sent += 1

    async def _send_photo(self, png: bytes, caption: str, silent: bool) -> None:
        try:
            message_id = await self.transport.send_photo(self.chat_id, png, caption, silent)
        except Exception:
            message_id = None
            log.exception("transport raised on send_photo")
        if message_id is None:
            self.failed += 1
        else:
            self.sent += 1

    # ------------------------------------------------------------------ shutdown

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking events, send what is already queued (up to `timeout` seconds), end the worker."""
        if self._bus is not None:
            self._bus.unsubscribe(self.queue)
        if self._task is None:
            if self.queue.empty():
                return
            self.start()  # never started: still send what was queued
        if not self._task.done():
            if self.queue.full():  # never drop a message for the sentinel: stop once the queue is empty
                self._stop_when_empty = True
            else:
                self.queue.put_nowait(_STOP)
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                left = self.queue.qsize()
                self.dropped += left
                log.warning("notifier stop: %d message(s) not sent within %s s", left, timeout)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._task = None
        self._stop_when_empty = False

    def stats(self) -> dict[str, int]:
        return {
            "queued": self.queue.qsize(),
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "bus_dropped": self._bus.dropped if self._bus is not None else 0,
        }


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
        event = error_burst_event(now, count=len(self._times), window=self.window, threshold=self.threshold,
                                  last_error=text)
        try:
            self._publish(event)
        except Exception:  # the monitor runs inside the error path; it must not raise there
            log.exception("could not publish the error-burst alert")
        return True

    def in_window(self, now: datetime | None = None) -> int:
        """Errors within the window ending now."""
        now = now or self.clock()
        return sum(1 for t in self._times if t > now - self.window)


__all__ = ["MESSAGE_LIMIT", "ErrorMonitor", "Notifier", "Outgoing", "parse_switches", "split_message"]
