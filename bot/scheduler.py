"""APScheduler's 1-second trading job (ticks and closed bars; on a replayed paper market it runs the
market loop, `trading.simulation.MarketLoop`) and the jobs on the market's clock: 5-minute equity
snapshot, 30-minute update, hourly and daily reports. Every job is guarded: an error is logged and counted, never raised into the
scheduler; a lost broker connection triggers a reconnect with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.brokers import remember_last_bar
from bot.store.health import JournalWriteError
from trading.bars import closed_bars
from trading.broker.base import ConnectionLost
from trading.timezones import WIB

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.error_monitor import ErrorMonitor
    from trading.broker.base import Broker
    from trading.engine import TradingEngine
    from trading.simulation import MarketLoop


class ChallengerSteps(Protocol):
    """The shadow challengers (bot.shadow.ShadowService), stepped after the live engine, never before."""

    async def after_tick(self) -> None: ...
    async def after_bar(self, window: pl.DataFrame) -> None: ...


class App(Protocol):
    """What the jobs use of the service (`bot.app.App`, which imports this module)."""

    settings: Settings
    engine: TradingEngine
    broker: Broker
    clock: Callable[[], datetime]
    market_loop: MarketLoop | None
    market_state: Path | None
    last_bars: pl.DataFrame | None
    errors: ErrorMonitor
    running_jobs: set[asyncio.Task[Any]]
    trading_job: TradingJob

    @property
    def shadow(self) -> ChallengerSteps | None: ...

    def notify_info(self, text: str) -> None: ...
    async def five_minute_job(self, now: datetime | None = None) -> None: ...
    async def market_update_job(self) -> None: ...
    async def hourly_job(self) -> None: ...
    async def daily_job(self) -> None: ...


log = logging.getLogger(__name__)
MAX_CATCH_UP = 20  # extra closed bars fetched with the history after a pause (history only, never decided)


class TradingJob:
    """Every second: `engine.on_tick()`; when a new M15 bar has closed, `engine.on_bar(closed bars)`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.last_bar_time: datetime | None = None
        self._reconnect_delay = 1.0
        self._down_since: datetime | None = None
        self.reports = ReportClock(app)

    async def run(self) -> None:
        app = self.app
        try:
            if app.market_loop is not None:  # a replayed paper market: its own loop, on the market's clock
                await app.market_loop.run_due()
            else:
                await self._live_step()
            self._reconnect_delay = 1.0
            if self._down_since is not None:
                app.notify_info(f"broker connection restored (down since {self._down_since:%H:%M} UTC)")
                self._down_since = None
        except ConnectionLost as exc:
            await self._reconnect(exc)
        except JournalWriteError:
            pass  # logged and alarmed once per outage by the journal (bot.store.health, bot.journal_guard)
        except Exception as exc:
            log.exception("trading job failed")
            app.errors.record(exc)  # wall-clock time: a replayed market runs faster

    async def _live_step(self) -> None:
        app = self.app
        engine = app.engine
        await engine.on_tick()
        shadow = app.shadow
        if shadow is not None:  # the challengers after live's step, never before it
            await shadow.after_tick()
        with engine.timer.phase("bars"):  # every second only the last bars: is there a new close?
            now = app.clock()
            latest = closed_bars(await app.broker.bars(3), now)
            closed = latest.clear()
            if latest.height and latest["time"][-1] != self.last_bar_time:
                history = app.settings.analysis_history_bars + MAX_CATCH_UP
                closed = closed_bars(await app.broker.bars(history + 1), now)
        for upto in self._new_closes(closed):
            window = closed.head(upto)
            self.last_bar_time = window["time"][-1]
            app.last_bars = window
            await engine.on_bar(window)
            if shadow is not None:
                await shadow.after_bar(window)
            if app.market_state is not None:
                remember_last_bar(app.market_state, self.last_bar_time)
        self.reports.tick(app.clock())

    def _new_closes(self, closed: pl.DataFrame) -> range:
        """The row count of `closed` ending at the newest closed bar, when it is new. Bars that closed
        while the bot was away (a pause, a reconnect) are history only: an order sent now fills at
        now's price, so deciding each of them would fill several bars' decisions at one price."""
        if closed.height == 0:
            return range(0)
        if self.last_bar_time is not None and closed["time"][-1] <= self.last_bar_time:
            return range(0)
        return range(closed.height, closed.height + 1)

    def bar_decided(self, _bar: int, window: pl.DataFrame, _decision: object) -> Awaitable[None] | None:
        """The market loop's hook after each bar decision of a replayed paper market (then the challengers')."""
        app = self.app
        self.last_bar_time = window["time"][-1]
        app.last_bars = window
        if app.market_state is not None:
            remember_last_bar(app.market_state, self.last_bar_time, app.clock())
        shadow = app.shadow
        return shadow.after_bar(window) if shadow is not None else None

    def stepped(self, now: datetime) -> Awaitable[None] | None:
        """The market loop's hook after each live step of a replayed paper market: reports, then the challengers."""
        self.reports.tick(now)
        shadow = self.app.shadow
        return shadow.after_tick() if shadow is not None else None

    async def _reconnect(self, exc: Exception) -> None:
        app = self.app
        if self._down_since is None:
            self._down_since = app.clock()
            log.warning("broker connection lost: %s", exc)
        app.errors.record(exc)  # wall-clock time: a replayed market runs faster
        await asyncio.sleep(self._reconnect_delay)
        self._reconnect_delay = min(self._reconnect_delay * 2, 60.0)
        try:
            await app.broker.connect()
        except Exception as again:
            log.warning("reconnect failed: %s (next try in %.0f s)", again, self._reconnect_delay)


class ReportClock:
    """The market update, hourly analysis and daily summary follow the market's clock (the engine's):
    live that is the wall clock; on an accelerated replay the reports come as often as the market
    moves, so a replay shows them on schedule. Each report fires when its slot changes (never at
    start-up), from the trading job, in its own task so the loop does not wait for it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.slots: dict[str, object] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def due(self, now: datetime) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
        s, app = self.app.settings, self.app
        wib = now.astimezone(WIB)
        wanted: list[tuple[str, object, Callable[[], Awaitable[Any]]]] = []
        # the equity snapshot (and news, auto-trainer checks) every 5 market minutes, stamped with its slot
        five = int(now.timestamp() // 300)
        wanted.append(("five_minutes", five, lambda: app.five_minute_job(now)))
        if s.market_update_minutes:
            slot = int(now.timestamp() // (60 * s.market_update_minutes))
            wanted.append(("market_update", slot, app.market_update_job))
        if s.hourly_analysis:
            wanted.append(("hourly", (wib.date(), wib.hour), app.hourly_job))
        if s.daily_summary:
            wanted.append(("daily", wib.date(), app.daily_job))
        out = []
        for name, stamp, job in wanted:
            previous = self.slots.get(name)
            self.slots[name] = stamp
            if previous is not None and previous != stamp:
                out.append((name, job))
        return out

    def tick(self, now: datetime) -> None:
        for name, job in self.due(now):
            task = asyncio.create_task(guarded(self.app, name, job)(), name=f"report-{name}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            # counted as running from now on: a shutdown waits for a report (a journal write) that has
            # not started yet, instead of cancelling it mid-write at the loop's close
            self.app.running_jobs.add(task)
            task.add_done_callback(self.app.running_jobs.discard)


def in_flight(app: App, job: Callable[[], Awaitable[Any]]) -> Callable[[], Coroutine[Any, Any, None]]:
    """Track the running job in `app.running_jobs`, so shutdown lets it finish instead of cancelling it
    mid-write (APScheduler's asyncio executor cancels running jobs on shutdown)."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            app.running_jobs.add(task)
        try:
            await job()
        finally:
            if task is not None:
                app.running_jobs.discard(task)

    run.__name__ = getattr(job, "__name__", "job")
    return run


def guarded(
    app: App, name: str, job: Callable[[], Awaitable[Any]]
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        try:
            await job()
        except JournalWriteError:
            pass  # logged and alarmed once per outage by the journal
        except Exception as exc:
            log.exception("%s job failed", name)
            app.errors.record(exc)  # wall-clock time: a replayed market runs faster

    run.__name__ = name
    return in_flight(app, run)


def build_scheduler(app: App) -> AsyncIOScheduler:
    sched = AsyncIOScheduler(timezone=WIB)
    common = dict(max_instances=1, coalesce=True, replace_existing=True)
    sched.add_job(
        in_flight(app, app.trading_job.run),
        "interval",
        seconds=1,
        id="trading",
        misfire_grace_time=1,
        **common,
    )
    return sched
