"""The outgoing notification queue: engine events and ad-hoc messages to one chat, in order.

`Notifier.attach(bus)` subscribes to the EventBus and starts a worker task. The engine only ever
calls the bus's non-blocking `publish`; when the notifier falls behind, the bus drops the oldest
queued item for this subscriber and counts it (`bus.dropped`). The worker renders each event with
`bot.messages.render_event` and hands it to the `Courier` (bot.courier), which sends through a
`Transport`: must-deliver kinds (trades, limits, approvals, errors, pause/resume, start/stop; see
bot.catchup) are first written to the journal's outbox and retried for as long as Telegram is
unreachable, then sent one by one or, when many piled up, as one summary naming every ticket;
undelivered ones are resent after a restart (`restore`). A failing formatter is logged and the
worker carries on. Per-kind switches (`on`, `silent`, `off`, bot.notify_switches) for every event kind
and the three reports (`market_update`, `hourly`, `daily`); `/notify` changes them and the journal
keeps them.

A chat budget in wall time, whatever the market clock does (an accelerated paper market runs the
reports 60 times faster): at most one message a second, at most `per_minute` a rolling minute, and
a routine report of one kind at most once every `report_gap` seconds. Routine messages over the
budget are skipped (a newer market update replaces an older one still queued) and the chat is told
once per kind; must-deliver messages only take the one-a-second pace (the per-minute cap never holds
them back), the other essentials wait for the budget.

`ErrorMonitor` (bot.error_monitor, re-exported here) turns a stream of iteration errors into at most
one ERROR_BURST event per burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.budget import ChatBudget, Pacer
from bot.catchup import SUMMARY_OVER, event_meta, must_deliver
from bot.courier import MESSAGE_LIMIT, Courier, Letter
from bot.error_monitor import ErrorMonitor
from bot.messages import fallback_text, render_event
from bot.notify_switches import (
    MESSAGE_KINDS,
    NOTIFY_STATE_KEY,
    Switches,
    check_switch,
    parse_switches,
)
from bot.retry import Backoff
from bot.transport import Transport, split_message
from trading.events import Event, EventBus, EventKind
from trading.timezones import utc_now

if TYPE_CHECKING:
    from bot.store.outbox import OutboxStore

log = logging.getLogger(__name__)

# Over the budget these are skipped; everything else (trades, limits, approvals, errors...) only waits.
ROUTINE_KINDS = frozenset({"market_update", "hourly", "sl_moved", "training_progress"})
REPLACEABLE_KINDS = frozenset({"market_update", "hourly"})  # a newer one makes a queued older one moot
KIND_LABELS = {
    "market_update": "Market updates",
    "hourly": "Hourly analyses",
    "daily": "Daily summaries",
    "sl_moved": "SL moves",
    "info": "Info messages",
    "training_progress": "Training progress",
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An ad-hoc message (a report, a command's late answer): text, or a photo with a caption.

    `kind` names a report kind (`market_update`, `hourly`, `daily`) or an event kind, so the
    per-kind switch and the budget apply; "" is a direct answer, always sent."""

    html: str
    silent: bool = False
    png: bytes | None = None
    kind: str = ""
    seq: int = 0


class _Stop:
    """Queue sentinel: everything queued before it is sent, then the worker ends."""


class _Wake:
    """Queue sentinel: the worker re-reads `Notifier.queue` (after attach swapped it)."""


_STOP, _WAKE = _Stop(), _Wake()
QueueItem = Event | Outgoing | _Stop | _Wake


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
        budget: ChatBudget | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        outbox: OutboxStore | None = None,
        backoff: Backoff | None = None,
        summarize_over: int = SUMMARY_OVER,
        state_line: Callable[[], str] | None = None,
    ) -> None:
        self.transport = transport
        self.chat_id = chat_id
        self.switchboard = Switches(quiet_kinds, muted_kinds)
        self.limit = limit
        self.wall_clock = wall_clock
        self.pacer = Pacer(budget, wall_clock, sleep)
        self.courier = Courier(
            transport,
            chat_id,
            self.pacer,
            store=outbox,
            limit=limit,
            backoff=backoff,
            summarize_over=summarize_over,
            state_line=state_line,
            sleep=sleep,
            routine=ROUTINE_KINDS,
        )
        self._report_at: dict[str, float] = {}  # wall time of the last routine report of each kind
        self._seq: Counter[str] = Counter()  # replaceable reports queued so far, per kind
        self._told: set[str] = set()  # kinds whose skipping the chat was told about
        self.over_budget: Counter[str] = Counter()  # routine messages skipped (or replaced) per kind
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self._bus: EventBus | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_when_empty = False
        self._failed = 0  # formatter errors and letters that raised
        self.skipped = 0  # muted or not-notified events
        self._dropped = 0  # ad-hoc messages dropped on overflow, and items left at stop()

    @property
    def budget(self) -> ChatBudget | None:
        """None: no budget (tests, a private log chat)."""
        return self.pacer.budget

    @budget.setter
    def budget(self, value: ChatBudget | None) -> None:
        self.pacer.budget = value

    @property
    def sent(self) -> int:
        """Messages (parts) handed to the transport and accepted."""
        return self.courier.sent

    @property
    def failed(self) -> int:
        """Sends refused for good, and formatter errors."""
        return self._failed + self.courier.failed

    @property
    def dropped(self) -> int:
        """Messages lost: queue overflow, memory messages left at stop (never an outbox row)."""
        return self._dropped + self.courier.dropped

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
        """Start the worker and the sending task (attach does this); needs a running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="notifier")
        self.courier.start()

    async def restore(self, keep_days: float = 7.0) -> int:
        """At start: queue the outbox rows a previous run left undelivered (first in line), and
        forget delivered rows older than `keep_days`. Returns how many wait."""
        store = self.courier.store
        if store is None:
            return 0
        try:
            await store.prune(utc_now() - timedelta(days=keep_days))
            return await self.courier.restore()
        except Exception as exc:  # a journal fault must not stop the start; the rows stay for next time
            log.warning(
                "outbox: cannot read the messages a previous run left (%s: %s)", type(exc).__name__, exc
            )
            return 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ producers (never block)

    def notify_event(self, event: Event) -> None:
        """Queue an event directly (for events that do not go through the bus)."""
        self._put(self.queue, event)

    def notify_text(self, html: str, silent: bool = False, kind: str = "") -> None:
        """Queue an ad-hoc HTML message (split when long); `kind` makes a report switchable and budgeted."""
        self._put(self.queue, self._stamp(Outgoing(html, silent, kind=kind)))

    def notify_photo(self, png: bytes, caption_html: str = "", silent: bool = False, kind: str = "") -> None:
        self._put(self.queue, self._stamp(Outgoing(caption_html, silent, png, kind=kind)))

    def _stamp(self, item: Outgoing) -> Outgoing:
        if item.kind in REPLACEABLE_KINDS:
            self._seq[item.kind] += 1
            return replace(item, seq=self._seq[item.kind])
        return item

    # ------------------------------------------------------------------ switches

    @property
    def switches(self) -> dict[str, str]:
        """The kinds switched so far and their value (the others keep their default)."""
        return self.switchboard.values

    @property
    def quiet_kinds(self) -> frozenset[EventKind]:
        return self.switchboard.event_kinds("silent")

    @property
    def muted_kinds(self) -> frozenset[EventKind]:
        return self.switchboard.event_kinds("off")

    def switch(self, kind: str) -> str:
        """on, silent or off; reports are silent unless switched (they buzz the phone on a schedule)."""
        return self.switchboard.get(kind)

    def set_switch(self, kind: str, value: str) -> tuple[str, str]:
        """Switch one message kind; ValueError (one line) on an unknown kind or value."""
        kind, value = self.switchboard.set(kind, value)
        self._told.discard(kind)  # switched on again: say once more when it goes over the budget
        return kind, value

    def load_switches(self, saved: Mapping[str, str]) -> None:
        """Restore the switches the journal kept (unknown or bad entries from an older version are ignored)."""
        self._told.difference_update(self.switchboard.load(saved))

    def switches_to_save(self) -> dict[str, str]:
        return self.switchboard.to_save()

    def _put(self, q: asyncio.Queue[Any], item: QueueItem) -> None:
        if q.full():  # same policy as the bus: the oldest item goes
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
                self._dropped += 1
        q.put_nowait(item)

    # ------------------------------------------------------------------ worker: render, budget, hand over

    async def run(self) -> None:
        """Render queued items in order and hand them to the courier until the stop sentinel arrives."""
        while True:
            item = await self.queue.get()
            if isinstance(item, _Stop):
                return
            if isinstance(item, _Wake):
                continue
            try:
                await self._handle(item)
            except Exception:  # a bug in one message must not end the worker
                self._failed += 1
                log.exception("notification failed")
            if self._stop_when_empty and self.queue.empty():
                return

    async def _handle(self, item: Event | Outgoing) -> None:
        kind = item.kind if isinstance(item, Outgoing) else item.kind.value
        switch = self.switch(kind) if kind else "on"
        if switch == "off":
            self.skipped += 1
            return
        if isinstance(item, Outgoing):
            if self.budget and item.seq and item.seq < self._seq[kind]:  # a newer one of its kind is queued
                await self._over_budget(kind)
                return
            if not await self._within_budget(kind):
                return
            await self._post(
                Letter(item.html, item.silent or switch == "silent", kind, item.png, must=must_deliver(kind))
            )
            return
        quiet = switch == "silent"
        try:
            rendered = render_event(item)
        except Exception:
            self._failed += 1
            log.exception("could not format %s event; sending its summary", item.kind)
            await self._post(
                Letter(fallback_text(item), quiet, kind, must=must_deliver(kind), meta=event_meta(item))
            )
            return
        if rendered is None:
            self.skipped += 1
            return
        if not await self._within_budget(kind):
            return
        await self._post(
            Letter(
                rendered.html, rendered.silent or quiet, kind, must=must_deliver(kind), meta=event_meta(item)
            )
        )

    async def _post(self, letter: Letter) -> None:
        if self.budget and letter.kind in REPLACEABLE_KINDS:
            replaced = self.courier.discard_older(
                letter.kind
            )  # still waiting (an outage): the newer one wins
            if replaced:
                self.over_budget[letter.kind] += replaced - 1
                self.skipped += replaced - 1
                await self._over_budget(letter.kind)
        await self.courier.post(letter)

    # ------------------------------------------------------------------ budget (wall time)

    async def _within_budget(self, kind: str) -> bool:
        """False (and skipped, said once) for a routine message over the budget; essentials wait instead."""
        if self.budget is None or kind not in ROUTINE_KINDS:
            return True
        now = self.wall_clock()
        last = self._report_at.get(kind)
        too_soon = kind in REPLACEABLE_KINDS and last is not None and now - last < self.budget.report_gap
        if too_soon or self.pacer.minute_full():
            await self._over_budget(kind)
            return False
        if kind in REPLACEABLE_KINDS:
            self._report_at[kind] = now
        return True

    async def _over_budget(self, kind: str) -> None:
        self.over_budget[kind] += 1
        self.skipped += 1
        budget = self.budget
        if kind in self._told or budget is None:  # only a budget skips messages
            return
        self._told.add(kind)
        gap = f"at most one every {budget.report_gap / 60:g} min, " if kind in REPLACEABLE_KINDS else ""
        await self.courier.post(
            Letter(
                f"🔕 {KIND_LABELS.get(kind, kind)} come faster than this chat's budget ({gap}"
                f"{budget.per_minute} messages a minute, real time): the ones over it are skipped and "
                f"I say this once. <code>/notify {kind} off</code> stops them, <code>/notify</code> lists all.",
                silent=True,
            )
        )

    # ------------------------------------------------------------------ shutdown

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking events, send what is already queued (up to `timeout` seconds), end both tasks.
        Must-deliver messages not sent by then stay in the outbox for the next start."""
        if self._bus is not None:
            self._bus.unsubscribe(self.queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.pacer.draining = True
        if self._task is None and not self.queue.empty():
            self.start()  # never started: still send what was queued
        if self._task is not None and not self._task.done():
            if self.queue.full():  # never drop a message for the sentinel: stop once the queue is empty
                self._stop_when_empty = True
            else:
                self.queue.put_nowait(_STOP)
            try:  # rendering and storing are quick; sending is the courier's part below
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                left = self.queue.qsize()
                self._dropped += left
                log.warning("notifier stop: %d message(s) not rendered within %s s", left, timeout)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.courier.drain(max(deadline - loop.time(), 0.0))
        self._task = None
        self._stop_when_empty = False

    def stats(self) -> dict[str, int]:
        return {
            "queued": self.queue.qsize() + self.courier.waiting,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "dropped": self.dropped,
            "over_budget": sum(self.over_budget.values()),
            "bus_dropped": self._bus.dropped if self._bus is not None else 0,
            "summarised": self.courier.summarised,
        }


class NotifyControl:
    """What `/notify` calls: the switches of every message kind, one changed and kept in the journal.

    `save` receives {NOTIFY_STATE_KEY: switches} (e.g. `journal.save_state`); the change applies
    only after it is stored, so a journal failure changes nothing."""

    def __init__(self, notifier: Notifier, save: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.notifier = notifier
        self.save = save

    def lines(self) -> list[str]:
        marks = {"on": "🔔", "silent": "🔕", "off": "⛔"}
        out = []
        for kind in MESSAGE_KINDS:
            value = self.notifier.switch(kind)
            skipped = self.notifier.over_budget.get(kind, 0)
            note = f" ({skipped} skipped over the chat budget)" if skipped else ""
            out.append(f"{marks[value]} {kind}: {value}{note}")
        return out

    async def set(self, kind: str, value: str) -> tuple[str, str]:
        kind, value = check_switch(kind, value)  # ValueError: one line for the reply
        await self.save({NOTIFY_STATE_KEY: {**self.notifier.switches_to_save(), kind: value}})
        return self.notifier.set_switch(kind, value)


__all__ = [
    "MESSAGE_KINDS",
    "MESSAGE_LIMIT",
    "NOTIFY_STATE_KEY",
    "ChatBudget",
    "ErrorMonitor",
    "Notifier",
    "NotifyControl",
    "Outgoing",
    "check_switch",
    "parse_switches",
    "split_message",
]
