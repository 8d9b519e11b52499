"""The engine's recorder when the journal cannot write (read-only file, full disk): nothing is lost,
nothing is reported before it is booked, and no order goes out without its decision row.

- The first failed write starts an outage: one alarm to the chat (EventKind.JOURNAL) and one ERROR line
  (bot.store.health); `/health` shows the journal and entries red while it lasts.
- While it lasts every record the engine hands over (closes with their real exit reason, P/L and
  times, SL moves, a late fill, decisions) is kept in memory in order, and the engine state's latest
  snapshot; `record_decision` answers None, and the engine sends no order for a decision without an id.
  The engine still counts every close in its risk state, and open positions keep their broker stops.
- Events about a ticket whose booking is held (its close, SL move...) wait on the `HoldingBus`.
- A decision that places no order (a skip) is written aside (`record_decision_aside`): the engine does
  not wait for it; such rows land one at a time in the order queued, through the same outage path, and
  any later `record_decision` (an entry) waits for them first. `drain` waits for them at shutdown.
- Every `retry_seconds` (and before any new record) a probe write checks the journal; once it takes
  writes again the held records are booked in order, the recovery is announced with what was booked,
  then the held events go out. New entries resume by themselves after that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.journal_recorder import JournalRecorder
from bot.store.health import JournalHealth, JournalWriteError
from trading.domain import ClosedTrade
from trading.events import Event, EventBus, EventKind
from trading.records import UNRECORDED_ENTRY, Decision, OpenedTrade
from trading.timezones import utc_now

log = logging.getLogger(__name__)
PROBE_KEY = "journal_probe"  # bot_state key the probe write stamps with the time it wrote
SHUTDOWN_GRACE = 5.0  # seconds a journal write in progress gets to finish when its task is cancelled
MAX_HELD_DECISIONS = 500  # decisions kept for a long outage (five days of M15 bars); trades are never dropped


class HoldingBus(EventBus):
    """An EventBus whose `holder` may keep an event back (it publishes it later with `release`)."""

    def __init__(self, maxsize: int = 1000) -> None:
        super().__init__(maxsize)
        self.holder: Callable[[Event], bool] | None = None

    def listened(self) -> bool:
        return self.holder is not None or super().listened()  # a held event is published later

    def publish(self, event: Event) -> None:
        if self.holder is not None and self.holder(event):
            return
        super().publish(event)

    def release(self, event: Event) -> None:
        super().publish(event)


@dataclass(frozen=True, slots=True)
class Held:
    """One record kept in memory: the recorder method and its arguments."""

    method: str
    args: tuple[Any, ...]
    ticket: int | None
    label: str


def event_ticket(event: Event) -> int | None:
    ticket = event.data.get("ticket")
    trade = event.data.get("trade")
    if ticket is None and trade is not None:
        ticket = getattr(trade, "ticket", None)
    return ticket if isinstance(ticket, int) else None


def close_label(trade: ClosedTrade) -> str:
    return f"close #{trade.ticket} {trade.reason} {trade.profit:+.2f}"


def journal_event(
    time: datetime,
    health: JournalHealth,
    *,
    ok: bool,
    booked: list[str] | None = None,
    down_seconds: float = 0.0,
) -> Event:
    """The alarm (ok False) or the recovery (ok True) of the journal, for the chat and the console."""
    if not ok:
        text = (
            f"journal {health.path} cannot write: {health.error}. No new entries until it can; open "
            "positions keep their broker stops and their closes are kept in memory"
        )
        return Event(
            EventKind.JOURNAL,
            time,
            {"ok": False, "path": health.path, "error": health.error, "since": health.failing_since},
            text,
        )
    booked = booked or []
    text = (
        f"journal {health.path} writes again after {down_seconds:.0f} s; booked {len(booked)} held "
        f"record(s); new entries allowed again"
    )
    return Event(
        EventKind.JOURNAL,
        time,
        {"ok": True, "path": health.path, "booked": booked, "down_seconds": down_seconds},
        text,
    )


class JournalGuard:
    """`trading.records.Recorder` over a JournalRecorder; see the module doc."""

    def __init__(
        self,
        recorder: JournalRecorder,
        bus: HoldingBus | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        wall: Callable[[], float] = time.monotonic,
        retry_seconds: float = 5.0,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        self.recorder = recorder
        self.journal = recorder.journal
        self.health: JournalHealth = recorder.journal.health
        self.bus = bus
        self.clock, self.wall, self.retry_seconds = clock, wall, retry_seconds
        self.on_error = on_error  # an aside write's unexpected failure, counted as the job's own would be
        self._held: list[Held] = []
        self._state: dict[str, Any] | None = None  # the engine state's newest snapshot, not yet saved
        self._events: list[Event] = []
        self._outage: datetime | None = None  # when the alarmed outage began
        self._next_try = 0.0
        self._lock = asyncio.Lock()
        self._aside: asyncio.Future[None] | None = None  # the newest row written aside (awaits the older)
        self.health.listeners.append(self._on_health)
        if bus is not None:
            bus.holder = self._hold_event

    # ------------------------------------------------------------------ state
    @property
    def holding(self) -> bool:
        return bool(self._held) or self._state is not None

    def _on_health(self, health: JournalHealth, started: bool) -> None:
        if started and self._outage is None:
            self._outage = health.failing_since
            self._publish(journal_event(self.clock(), health, ok=False))
        elif not started and not self.holding and self._outage is not None:
            self._recovered([])

    def _publish(self, event: Event) -> None:
        if self.bus is not None:
            self.bus.release(event)

    def _hold_event(self, event: Event) -> bool:
        ticket = event_ticket(event)
        if ticket is None or not any(h.ticket == ticket for h in self._held):
            return False
        self._events.append(event)
        return True

    def _keep(self, method: str, args: tuple[Any, ...], ticket: int | None, label: str) -> None:
        self._wait_after_failure()
        if method == "record_decision":
            decisions = [h for h in self._held if h.method == "record_decision"]
            if len(decisions) >= MAX_HELD_DECISIONS:
                self._held.remove(decisions[0])
                log.warning(
                    "journal outage: more than %d decisions held; the oldest is dropped", MAX_HELD_DECISIONS
                )
        self._held.append(Held(method, args, ticket, label))
        self.health.held = tuple(h.label for h in self._held if h.method != "record_decision")

    def _wait_after_failure(self) -> None:
        """The first record kept: the next try comes a retry period later, not at the next write."""
        if not self.holding:
            self._next_try = self.wall() + self.retry_seconds

    # ------------------------------------------------------------------ writing through, or keeping
    async def _write(self, method: str, args: tuple[Any, ...], ticket: int | None, label: str) -> Any:
        """Write now when nothing is held (or the held records could be booked first); else keep it.
        Returns the recorder's answer, or None when kept."""
        async with self._lock:
            if await self._clear():
                try:
                    return await getattr(self.recorder, method)(*args)
                except JournalWriteError:
                    pass
            self._keep(method, args, ticket, label)
            return None

    async def record_decision(self, decision: Decision) -> int | None:
        """None when the decision row could not be committed: the engine then sends no order for it
        (kept as a skip, written when the journal recovers). The rows queued aside land first."""
        await self.drain(None)
        return await self._record_decision(decision)

    async def _record_decision(self, decision: Decision) -> int | None:
        async with self._lock:
            if await self._clear():
                try:
                    return await self.recorder.record_decision(decision)
                except JournalWriteError:
                    pass
            if decision.action == "enter":
                decision = replace(decision, action="skip", reason=UNRECORDED_ENTRY)
            self._keep("record_decision", (decision,), None, f"decision of the {decision.bar_time:%H:%M} bar")
            return None

    def record_decision_aside(self, decision: Decision, landed: Callable[[int | None], None]) -> None:
        """Write a decision that places no order without the caller waiting; see the module doc."""
        self._aside = asyncio.ensure_future(self._write_aside(self._aside, decision, landed))

    async def _write_aside(
        self, before: asyncio.Future[None] | None, decision: Decision, landed: Callable[[int | None], None]
    ) -> None:
        if before is not None:
            await asyncio.wait([before])  # the older row first, whatever became of it
        try:
            landed(await self._record_decision(decision))
        except Exception as exc:  # not an outage (that is kept and retried above): a row the journal refuses
            log.exception("the decision of the %s bar could not be written", decision.bar_time)
            if self.on_error is not None:
                self.on_error(exc)

    async def drain(self, timeout: float | None = SHUTDOWN_GRACE) -> bool:
        """Wait until the decisions written aside have landed (at most `timeout` s); True when none is
        pending. The writes go on if the wait ends first, and a cancelled waiter does not cancel them."""
        tail = self._aside
        if tail is None or tail.done():
            return True
        await asyncio.wait([tail], timeout=timeout)
        return tail.done()

    async def record_order_failed(self, decision: Decision) -> None:
        await self._write(
            "record_order_failed", (decision,), None, f"decision {decision.id} {decision.action}"
        )

    async def record_open(self, trade: OpenedTrade) -> None:
        await self._write("record_open", (trade,), trade.ticket, f"open #{trade.ticket}")

    async def record_late_fill(self, decision: Decision, trade: OpenedTrade) -> None:
        await self._write("record_late_fill", (decision, trade), trade.ticket, f"late fill #{trade.ticket}")

    async def record_sl_change(self, ticket: int, time: datetime, sl: float, tp: float, reason: str) -> None:
        await self._write("record_sl_change", (ticket, time, sl, tp, reason), ticket, f"SL move #{ticket}")

    async def record_close(self, trade: ClosedTrade) -> bool:
        """True when stored or kept to be stored (the engine counts it); False when already booked."""
        if any(h.method == "record_close" and h.ticket == trade.ticket for h in self._held):
            return False
        stored = await self._write("record_close", (trade,), trade.ticket, close_label(trade))
        return True if stored is None else bool(stored)

    async def correct_close(self, trade: ClosedTrade) -> bool:
        stored = await self._write("correct_close", (trade,), trade.ticket, f"correction of #{trade.ticket}")
        return True if stored is None else bool(stored)

    async def save_state(self, state: dict[str, Any]) -> None:
        async with self._lock:
            if await self._clear():
                try:
                    await self.recorder.save_state(state)
                    return
                except JournalWriteError:
                    pass
            self._wait_after_failure()
            self._state = state

    async def load_state(self) -> dict[str, Any] | None:
        return await self.recorder.load_state()

    # ------------------------------------------------------------------ recovery
    async def _clear(self) -> bool:
        """True when nothing is held (booking the held records first when a retry is due)."""
        if not self.holding:
            return True
        if self.wall() < self._next_try:
            return False
        await self._flush()
        return not self.holding

    async def _probe(self) -> bool:
        """One small committed write; tried twice, as the first may meet a connection opened during the
        fault (the failure recycles the pool)."""
        for _ in range(2):
            try:
                await self.journal.save_state({PROBE_KEY: self.clock().isoformat()})
                return True
            except JournalWriteError:
                continue
        return False

    async def _flush(self) -> None:
        self._next_try = self.wall() + self.retry_seconds
        if not await self._probe():
            return
        booked: list[str] = []
        while self._held:
            item = self._held[0]
            try:
                await getattr(self.recorder, item.method)(*item.args)
            except JournalWriteError:
                break
            except Exception:  # a record the journal refuses for itself must not block the others
                log.exception("journal outage: the held %s could not be booked; dropped", item.label)
            else:
                if item.method != "record_decision":
                    booked.append(item.label)
            self._held.pop(0)
        self.health.held = tuple(h.label for h in self._held if h.method != "record_decision")
        if self._held:
            return
        if self._state is not None:
            try:
                await self.recorder.save_state(self._state)
            except JournalWriteError:
                return
            self._state = None
        self._recovered(booked)

    def _recovered(self, booked: list[str]) -> None:
        since, self._outage = self._outage, None
        now = self.clock()
        down = (now - since).total_seconds() if since is not None else 0.0
        log.warning(
            "journal outage over after %.0f s: %d held record(s) booked%s",
            down,
            len(booked),
            f" ({', '.join(booked)})" if booked else "",
        )
        self._publish(journal_event(now, self.health, ok=True, booked=booked, down_seconds=down))
        events, self._events = self._events, []
        for event in events:
            self._publish(event)

    async def maintain(self) -> None:
        """Book the held records when a retry is due; probe a journal that failed with nothing held."""
        if not self.holding and self.health.writable:
            return
        async with self._lock:
            if self.holding:
                await self._clear()
            elif self.wall() >= self._next_try:
                self._next_try = self.wall() + self.retry_seconds
                await self._probe()  # success ends the outage (and announces it) through the health listener

    async def run(self) -> None:
        """The retry loop (a task of the app). A shutdown cancels it: the wait ends at once, but a probe
        or booking in progress finishes first (bounded), so no connection goes back to the pool
        mid-transaction with a CancelledError."""
        while True:
            await asyncio.sleep(self.retry_seconds)
            step = asyncio.ensure_future(self._maintain_logged())
            try:
                await asyncio.shield(step)
            except asyncio.CancelledError:
                await asyncio.wait([step], timeout=SHUTDOWN_GRACE)
                raise

    async def _maintain_logged(self) -> None:
        try:
            await self.maintain()
        except Exception:
            log.exception("journal guard retry failed")

    async def flush_now(self) -> list[str]:
        """At shutdown: one last try; returns the labels of what is still held (lost unless booked)."""
        async with self._lock:
            if self.holding:
                self._next_try = 0.0
                await self._flush()
            return [h.label for h in self._held]


__all__ = ["HoldingBus", "JournalGuard", "event_ticket", "journal_event"]
