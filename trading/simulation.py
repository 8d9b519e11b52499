"""One simulated market clock for backtests and paper replays.

`MarketLoop` hands every tick of a `ReplayFeed` (manual, speed 0) to the paper broker (its SL/TP on
every tick) and drives the engine by market time only: the 1-second step runs on the first tick of
each market second, and the bar decision runs on the first tick after a bar closed, so its entry
fills at that tick's bid/ask with that tick's spread (as a live order sent after the close would).
A backtest calls `run()` (as fast as it can); a paper replay calls `run_due()` from its 1-second job
and only the ticks whose time has come at the replay's `speed` are processed. Either way the same
ticks reach the same code in the same order, so the trade list does not depend on the speed, on the
machine's load or on when the job happened to run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import numpy as np
import polars as pl

from trading.broker.feeds import ReplayFeed
from trading.broker.paper import PaperBroker
from trading.domain import Tick
from trading.quiet_ticks import EnginePort, QuietTicks
from trading.records import Decision
from trading.risk.modes import effective_mode
from trading.timezones import at_ms, ms_of, wib_date

DecisionHook = Callable[[int, pl.DataFrame, Decision], Awaitable[None] | None]
StepHook = Callable[[datetime], Awaitable[None] | None]


class LoopEngine(EnginePort, Protocol):
    """What the loop drives (`trading.engine.TradingEngine`): a step, a bar's decision, and the port
    its shortcuts read (`trading.quiet_ticks`)."""

    async def on_tick(self) -> None: ...

    async def on_bar(self, bars: pl.DataFrame) -> Decision: ...


class SimClock:
    """The market clock: the time of the tick being processed (never moves back)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def set(self, moment: datetime) -> None:
        if moment > self.now:
            self.now = moment

    def __call__(self) -> datetime:
        return self.now


class MarketLoop:
    """Drives `engine` (a `TradingEngine`) over `feed`'s ticks with `broker` (a paper broker on that feed).

    `window(bar)` gives the closed bars the analyzer sees when `bar` has just closed. `step_seconds`
    is the engine's step interval in market seconds (the live 1-second job). Bars before the feed's
    first undelivered tick count as decided already (warm-up, or a resumed market).
    """

    def __init__(
        self,
        feed: ReplayFeed,
        broker: PaperBroker,
        engine: LoopEngine,
        clock: SimClock,
        window: Callable[[int], pl.DataFrame],
        *,
        speed: float = 0.0,
        wall: Callable[[], float] = time.monotonic,
        step_seconds: float = 1.0,
        on_decision: DecisionHook | None = None,
        on_step: StepHook | None = None,
        skip_idle: bool = False,
        skip_quiet: bool = False,
    ) -> None:
        if feed.speed != 0:
            raise ValueError("the market loop paces the replay itself: give it a manual feed (speed 0)")
        if speed < 0:
            raise ValueError(f"speed must be 0 (as fast as possible) or positive, got {speed}")
        self.feed, self.broker, self.engine, self.clock = feed, broker, engine, clock
        self.window = window
        self.speed = speed
        self.wall = wall
        self.step_ms = max(1, round(step_seconds * 1000))
        self.on_decision, self.on_step = on_decision, on_step
        # with no position open, the rest of a bar is taken in one go when no step could act on it
        # (QuietTicks.take_idle_ticks); exact, so it only changes the speed
        self.skip_idle = skip_idle
        # with positions open, the ticks on which neither the broker nor a step would act are taken in
        # one go (PaperBroker.quiet_ticks, QuietTicks.take_open_ticks); exact, so only the speed changes
        self.skip_quiet = skip_quiet and on_step is None
        self.quiet = QuietTicks(engine, broker)
        self.skipped = 0
        self.bar = feed.bar_of(feed.delivered) if not feed.finished else feed.frame.height
        self.last_step: int | None = None
        self.ticks = 0
        self.decisions = 0
        self._wall_start: float | None = None
        self._replay_start = feed.replay_seconds(feed.delivered) if not feed.finished else 0.0
        self._halted = False

    def halt(self) -> None:
        """A shutdown: `run` and `run_due` return after the tick being processed (its step, its bar's
        decision and their journal writes finish), and process nothing after."""
        self._halted = True

    @property
    def finished(self) -> bool:
        return self.feed.finished

    async def run(self, max_ticks: int | None = None) -> int:
        """Process ticks until the feed ends (or `max_ticks`); returns how many."""
        done = 0
        while (max_ticks is None or done < max_ticks) and not self._halted:
            tick = self.feed.next_tick_now()
            if tick is None:
                break
            await self.process(tick, self.feed.delivered - 1)
            done += 1
        return done

    async def run_due(self, max_ticks: int = 50_000) -> int:
        """Process the ticks due by now at `speed` (wall clock); at most `max_ticks` in one call (the
        rest waits for the next call: the loop never runs ahead of the market, and never skips)."""
        if self.speed <= 0:
            return await self.run(max_ticks)
        now = self.wall()
        if self._wall_start is None:
            self._wall_start = now
        due = self._replay_start + (now - self._wall_start) * self.speed
        done = 0
        feed = self.feed
        while (
            done < max_ticks
            and not self._halted
            and not feed.finished
            and feed.replay_seconds(feed.delivered) <= due
        ):
            tick = feed.next_tick_now()
            assert tick is not None
            await self.process(tick, feed.delivered - 1)
            done += 1
            if done % 256 == 0:
                await asyncio.sleep(0)  # a burst of ticks must not starve the event loop
        return done

    async def process(self, tick: Tick, index: int) -> None:
        """One tick: the broker's SL/TP, then (once a market second) the engine's step, then the
        decision of the bar that has just closed (its order fills at this tick). With the shortcuts,
        the rest of the bar is then taken in one go, and with it, when nothing acts on it either, the
        next bar's first tick, whose bar is then decided in turn (a run of quiet bars in one call)."""
        self.ticks += 1
        self.clock.set(tick.time)
        self.broker.set_tick(tick)
        bar = self.feed.bar_of(index)
        closed = bar - 1 if bar != self.bar else None
        self.bar = bar
        second = ms_of(tick.time) // self.step_ms
        if second != self.last_step or closed is not None:
            self.last_step = second
            await self.engine.on_tick()
            if self.on_step is not None:
                await _maybe(self.on_step(self.clock.now))
        while True:
            if closed is not None and closed >= 0:
                await self._decide(closed)
            if not self.broker.has_positions():
                opening = self._skip_rest_of_bar(bar, index) if self.skip_idle else None
            else:
                opening = self._take_quiet_ticks(bar, index) if self.skip_quiet else None
            if opening is None:
                return
            # the next bar's first tick was taken with the rest of this bar, its step too: its bar's
            # decision is next, as `process` would have made it on that tick
            self.ticks += 1
            bar, closed, index = bar + 1, bar, opening
            self.bar = bar

    async def _decide(self, closed: int) -> None:
        """The decision of the bar that has just closed (its entry fills at the broker's tick). Only
        that bar is decided; a bar skipped over (none is) would otherwise fill at this tick's price too."""
        window = self.window(closed)
        decision = await self.engine.on_bar(window)
        self.decisions += 1
        if self.on_decision is not None:
            await _maybe(self.on_decision(closed, window, decision))

    def _skip_rest_of_bar(self, bar: int, index: int) -> int | None:
        """Take the rest of the bar's ticks as seen when no step could act on them
        (`QuietTicks.take_idle_ticks`) and, when the step on the next bar's first tick would only record
        it (`_flat_step_records_only`), that tick with them, its step recorded as the step would. Returns
        that tick's index when it was taken, so its bar is decided next; None otherwise."""
        feed = self.feed
        times, bid, ask = feed.bar_ticks(bar)
        start = feed.bar_start(bar)
        k = index - start + 1
        if k >= times.size:
            return None
        # through the bar's last tick too: the next tick opens a bar, so it is stepped whatever came before,
        # and a step with no position leaves nothing a later step would not set again
        rest_t, rest_bid, rest_ask = times[k:], bid[k:], ask[k:]
        opening = self._opening_step(bar, int(times[-1]))
        if opening is not None and self._flat_step_records_only(int(opening[0][0])):
            t, b, a = _appended((rest_t, rest_bid, rest_ask), opening)
            if self.quiet.take_idle_ticks(t, b, a, self.last_step, self.step_ms):
                self.skipped += rest_t.size
                return self._record_flat_step(start + times.size)
        if not self.quiet.take_idle_ticks(rest_t, rest_bid, rest_ask, self.last_step, self.step_ms):
            return None
        feed.skip_to(start + times.size)
        self.skipped += rest_t.size
        self.last_step = int(rest_t[-1]) // self.step_ms
        return None

    def _flat_step_records_only(self, time_ms: int) -> bool:
        """Whether the engine's step at `time_ms` (no position open, none closing) would only record
        the tick and the account: no risk mode to publish, no approval due (a day roll is ruled out by
        `_opening_step`, a flash-crash move by `take_idle_ticks`)."""
        engine, now = self.engine, at_ms(time_ms)
        state = engine.state
        return (
            state is not None
            and not engine.positions
            and not engine.closes_in_flight()
            and not engine.approval_due()
            and effective_mode(state, engine.limits, self.broker.account_now().balance, now).mode
            is engine.published_mode().mode
        )

    def _record_flat_step(self, opening: int) -> int:
        """The step on the tick at `opening` (taken with the ticks before it) as it records with no
        position open: the broker's and the engine's last tick and the account."""
        self.feed.skip_to(opening)
        tick = self.feed.next_tick_now()
        assert tick is not None
        self.clock.set(tick.time)
        self.broker.set_tick(tick)
        self.engine.last_tick = tick
        self.engine.account = self.broker.account_now()
        self.last_step = ms_of(tick.time) // self.step_ms
        return opening

    def _take_quiet_ticks(self, bar: int, index: int) -> int | None:
        """Take the rest of the bar's ticks nothing acts on (`QuietTicks.take_open_ticks`) and, when
        all are, the next bar's first tick with them (its step: a step runs on a bar's first tick
        whatever came before, and it judges with this bar's inputs, the next bar not yet decided).
        Returns that tick's index when it was taken, so its bar is decided next; None otherwise."""
        feed = self.feed
        times, bid, ask = feed.bar_ticks(bar)
        start = feed.bar_start(bar)
        k = index - start + 1
        end = times.size  # the last tick too: the next one opens a bar and is stepped anyway
        if k >= end:
            return None
        rest_t, rest_bid, rest_ask = times[k:end], bid[k:end], ask[k:end]
        opening = self._opening_step(bar, int(times[-1]))
        if opening is not None:
            rest_t, rest_bid, rest_ask = _appended((rest_t, rest_bid, rest_ask), opening)
        n = self.broker.quiet_ticks(rest_bid, rest_ask)
        if n == 0:
            return None
        taken, self.last_step = self.quiet.take_open_ticks(
            rest_t[:n], rest_bid[:n], rest_ask[:n], self.last_step, self.step_ms
        )
        if taken == 0:
            return None
        self.clock.set(at_ms(int(rest_t[taken - 1])))  # the broker's tick
        feed.skip_to(start + k + taken)
        if opening is not None and taken == rest_t.size:
            self.skipped += taken - 1
            return start + k + taken - 1
        self.skipped += taken
        return None

    def _opening_step(self, bar: int, last_ms: int) -> Ticks | None:
        """The next bar's first tick, to be taken with the rest of `bar` (whose last tick is at
        `last_ms`): only while the loop runs as fast as it can (not paced, not halted), and when that
        tick is surely a step of its own (a later second: a bar's first tick is stepped even within
        the second, a take would not step it) on the risk state's trading day (no day roll). Never
        with a step hook: it is told of every bar's opening step."""
        if self.speed > 0 or self._halted or self.on_step is not None or bar + 1 >= self.feed.frame.height:
            return None
        times, bid, ask = self.feed.bar_ticks(bar + 1)
        if times.size == 0:
            return None
        first_ms = int(times[0])
        if first_ms // self.step_ms <= last_ms // self.step_ms:
            return None
        state = self.engine.state
        if state is None or wib_date(at_ms(first_ms)) != state.day:  # a step would roll the day
            return None
        return times[:1], bid[:1], ask[:1]


Ticks = tuple[np.ndarray, np.ndarray, np.ndarray]  # times (ms), bids, asks


def _appended(ticks: Ticks, more: Ticks) -> Ticks:
    times, bids, asks = ticks
    return (
        np.concatenate((times, more[0])),
        np.concatenate((bids, more[1])),
        np.concatenate((asks, more[2])),
    )


async def _maybe(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


def history_window(frame: pl.DataFrame, history: int) -> Callable[[int], pl.DataFrame]:
    """The last `history` closed bars when bar `b` has just closed."""

    def window(bar: int) -> pl.DataFrame:
        first = max(0, bar + 1 - history)
        return frame.slice(first, bar + 1 - first)

    return window
