"""The service: start-up, the scheduled jobs and shutdown (`python main.py run`).

Start-up order (spec §6, made safe): settings → broker (3 tries) → journal (migrated) → models
(bot.model_setup: active version or SMC-only) → engine state restored → reconcile the broker's
positions with the journal (bot.reconcile) → the last closed bar judged → controller (bot.controller:
Telegram, or the console when no token is set, and the notifier) → scheduler → startup message.
Shutdown on SIGINT/SIGTERM (or Ctrl-C at the console prompt): no new job starts, the running one ends
after its current tick, the stop message, disconnect, close the database; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from bot import logbuffer
from bot.brokers import build_broker
from bot.config import Settings
from bot.context import BotContext
from bot.controller import Controller, start_controller
from bot.error_monitor import ErrorMonitor
from bot.journal_guard import SHUTDOWN_GRACE, HoldingBus, JournalGuard
from bot.journal_recorder import JournalRecorder
from bot.messages import limits_drift_notes, shutdown_event, startup_event
from bot.model_setup import build_backtester, load_models, model_to_shadow
from bot.reconcile import StartupReconcile
from bot.scheduler import TradingJob, build_scheduler
from bot.store import Journal
from handlers.clock import set_market_replay
from trading.analyzer import MarketAnalyzer
from trading.bars import closed_bars
from trading.engine import TradingEngine
from trading.events import Event, EventKind
from trading.sessions import market_status
from trading.timezones import utc_now, wib_date

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.console import ConsoleController
    from bot.notifier import Notifier
    from bot.shadow import ShadowService
    from bot.telegram import Polling
    from bot.transport import Transport
    from trading.news import NewsCalendar
    from trading.simulation import MarketLoop

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The bot cannot start; the message says what to fix."""


class App:
    connect_backoff = 2.0  # seconds before the 2nd broker connect try; doubled before the 3rd

    def __init__(self, settings: Settings, *, console_input: bool = True) -> None:
        self.settings = settings
        self.console_input = console_input
        self.logs = logbuffer.install()  # first: /logs shows the start-up lines the terminal showed
        self.bus = HoldingBus()  # events about bookings the journal has not taken yet wait
        self.errors = ErrorMonitor(self.bus)
        self.stop_event = asyncio.Event()
        self.notes: list[str] = []
        self.last_bars: pl.DataFrame | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.running_jobs: set[asyncio.Task[Any]] = set()  # scheduled jobs running now (scheduler.in_flight)
        self._signals = 0
        # what start() got to; shutdown (or a failed start) stops and closes only that
        self._opened = contextlib.AsyncExitStack()  # the broker's connection and the journal
        self.guard: JournalGuard | None = None
        self._approvals_queue: asyncio.Queue[Any] | None = None  # events, then None at shutdown
        self.market_loop: MarketLoop | None = None  # a replayed paper market's loop
        self.shadow: ShadowService | None = None  # challengers stepped after the live engine
        self.controller: Controller | None = None  # Telegram or the console, and the notifier
        self.scheduler: AsyncIOScheduler | None = None

    # the chat side, once started (tests and the jobs reach it through the app)
    @property
    def notifier(self) -> Notifier:
        assert self.controller is not None, "the notifier starts with the controller"
        return self.controller.notifier

    @property
    def transport(self) -> Transport:
        assert self.controller is not None, "the transport starts with the controller"
        return self.controller.transport

    @property
    def polling(self) -> Polling | None:
        return self.controller.polling if self.controller is not None else None

    @property
    def console(self) -> ConsoleController | None:
        return self.controller.console if self.controller is not None else None

    # ------------------------------------------------------------------ start-up
    async def start(self) -> None:
        s = self.settings
        setup = build_broker(s)
        self.broker, self.clock, self.feed = setup.broker, setup.clock, setup.feed
        self.market_state = setup.market_state
        set_market_replay(s.paper_replay_speed if self.feed is not None else None)  # labels the clock lines
        self._opened.push_async_callback(self._disconnect_broker)
        await self._connect_broker(setup.description)
        try:
            s.database_path.parent.mkdir(parents=True, exist_ok=True)
            self.journal = await Journal(s.database_path).open()
            setup.save_market_init()
        except Exception as exc:
            raise StartupError(f"DATABASE_PATH={s.database_path}: cannot open the journal: {exc}") from exc
        self._opened.push_async_callback(self.journal.close)
        self.recorder = JournalRecorder(self.journal, s.symbol)
        guard = self.guard = JournalGuard(self.recorder, self.bus, clock=utc_now, on_error=self.errors.record)
        loop = asyncio.get_running_loop()  # the trainer calls back from its supervisor thread

        def publish_from_thread(event: Event) -> None:
            loop.call_soon_threadsafe(self.bus.publish, event)

        try:
            models = load_models(
                s,
                self._bars_for_training,
                on_event=publish_from_thread,
                to_shadow=self._model_to_shadow(loop),
            )
        except Exception as exc:
            raise StartupError(f"MODELS_DIR={s.models_dir}: cannot load the models: {exc}") from exc
        if models.warning:
            self.notes.append(models.warning)
        self.slot, self.registry, self.trainer = models.slot, models.registry, models.trainer
        from models.live import SlotRegime, SlotSignal

        params = s.strategy_params()
        self.analyzer = MarketAnalyzer(
            SlotRegime(self.slot),
            SlotSignal(self.slot),
            history=s.analysis_history_bars,
            with_h1_bias="h1_bias" not in s.disabled_gates,
            flash_crash_pct=params.flash_crash_pct,
            flash_crash_bars=params.flash_crash_bars,
        )
        self.news = self._news_calendar()
        self.engine = TradingEngine(
            self.broker,
            self.analyzer,
            params=params,
            limits=s.limits(),
            recorder=guard,
            bus=self.bus,
            clock=self.clock,
            news=self.news.status if self.news else None,
            comment=s.order_comment,
            approval_ttl=timedelta(minutes=s.approval_ttl_minutes),
            approval_clock=utc_now,
            analyze_in_thread=True,
        )
        saved = await self.recorder.load_state()
        await self.engine.start(saved)
        self.engine.restore_approvals(await self.journal.pending_approvals(utc_now()))
        self.notes += await StartupReconcile(self.journal, self.broker, self.engine, self.clock).run()
        self.ctx = BotContext(
            self.engine,
            self.journal,
            s,
            self.analyzer,
            utc_now(),
            self.trainer,
            self.registry,
            backtester=build_backtester(s, self.engine, self.slot, self._bars_for_training),
            logs=self.logs,
            bars_available=lambda: self._bars_for_training(100_000).height,
            models=self.slot,
        )
        if s.shadow_max_challengers > 0:  # challengers on paper beside live (bot.shadow), after live's state
            from bot.shadow import build_shadow

            self.shadow = self.ctx.shadow = await build_shadow(self)
        approvals = self._approvals_queue = self.bus.subscribe()
        self._tasks.append(
            asyncio.create_task(self.recorder.keep_approvals(approvals), name="approvals-journal")
        )
        self._tasks.append(asyncio.create_task(guard.run(), name="journal-guard"))
        self.trading_job = TradingJob(self)
        if setup.sim_clock is not None:  # a replayed market: one loop on its clock, as in a backtest
            from trading.broker.paper import PaperBroker
            from trading.simulation import MarketLoop, history_window

            assert isinstance(self.broker, PaperBroker)  # bot.brokers replays a market on paper only
            self.market_loop = MarketLoop(
                self.feed,
                self.broker,
                self.engine,
                setup.sim_clock,
                history_window(self.feed.frame, s.analysis_history_bars),
                speed=setup.speed,
                on_decision=self.trading_job.bar_decided,
                on_step=self.trading_job.stepped,
            )
        elif self.feed is not None:  # dry run: the paper broker checks SL/TP on every tick of the real prices
            from trading.broker.paper import PaperBroker

            assert isinstance(self.broker, PaperBroker)
            self._tasks.append(asyncio.create_task(self.broker.run(), name="paper-market"))
        await self._judge_last_bar()
        self.controller = await start_controller(
            self.ctx, self.bus, console_input=self.console_input, on_interrupt=self._on_signal
        )
        if self.controller.note:
            self.notes.append(self.controller.note)
        self.scheduler = build_scheduler(self)
        self.scheduler.start()
        self._publish_startup(setup.description)
        # what start-up built (libraries' registries, models, the first analysis) is long-lived: out of the
        # collector's sight, a full collection later walks only the running bot's objects (300-640 ms on the
        # loop without this, under 15 ms with it: bench/live_bar.py's gc_pauses)
        gc.collect()
        gc.freeze()

    async def _judge_last_bar(self) -> None:
        """The last closed bar is analysed and judged at once (never entered: `engine.judge_at_start`),
        so /status, /chart and /filters answer from the first second, not after the next M15 close.
        The trading job then counts that bar as seen: it decides the next close, not this one again."""
        history = self.settings.analysis_history_bars
        try:
            if self.market_loop is not None:  # bars before the replay's next tick count as decided already
                last = self.market_loop.bar - 1
                window = self.market_loop.window(last) if last >= 0 else pl.DataFrame()
            else:
                window = closed_bars(await self.broker.bars(history + 1), self.clock()).tail(history)
            if window.height < 2:
                return
            await self.engine.judge_at_start(window)
        except Exception as exc:  # the first bar close analyses again; the start goes on
            log.warning("start-up analysis of the last closed bar failed: %s", exc)
            self.notes.append(
                f"start-up analysis failed ({exc}): the first analysis comes with the next M15 bar"
            )
            return
        self.last_bars = window
        if self.market_loop is None:
            self.trading_job.last_bar_time = window["time"][-1]

    async def _connect_broker(self, description: str) -> None:
        for attempt in range(1, 4):
            try:
                await self.broker.connect()
                log.info("broker connected: %s", description)
                return
            except Exception as exc:
                log.warning("broker connect attempt %d/3 failed: %s", attempt, exc)
                if attempt == 3:
                    raise StartupError(f"cannot connect to the broker ({description}): {exc}") from exc
                await asyncio.sleep(self.connect_backoff * attempt)

    def _model_to_shadow(self, loop: asyncio.AbstractEventLoop) -> Callable[[str], str]:
        """The auto-trainer's hand-off (from its thread): start a new model as a challenger (bot.shadow)."""
        return model_to_shadow(lambda: self.shadow, loop)

    def _bars_for_training(self, n: int) -> pl.DataFrame:
        if self.feed is not None:  # closed bars only: the forming bar's close is not final yet
            return closed_bars(self.feed.bars_now(n + 1), self.clock()).tail(n)
        return self.last_bars.tail(n) if self.last_bars is not None else pl.DataFrame()

    def _news_calendar(self) -> NewsCalendar | None:
        if not self.settings.news_calendar:
            return None
        from trading.news import NewsCalendar

        calendar = NewsCalendar(
            self.settings.news_calendar, self.settings.news_cache_path, self.settings.blackout_rules()
        )
        calendar.refresh()
        if calendar.last_error:
            self.notes.append(f"news calendar: {calendar.last_error}")
        return calendar

    def _publish_startup(self, description: str) -> None:
        s, snap = self.settings, self.engine.snapshot()
        account = snap.account
        bundle = self.slot.current
        # risk figures come once, from the limits the engine runs with (Risk Settings), never from the settings too
        config = {k: v for k, v in s.describe() if k not in ("Risk", "Positions")}
        config["Broker"] = description
        config["Model"] = bundle.version if bundle else "none: SMC-only"
        if snap.strategy_edge:
            config["Edge"] = snap.strategy_edge
        self.bus.publish(
            startup_event(
                self.clock(),
                balance=account.balance if account else 0.0,
                equity=account.equity if account else None,
                currency=account.currency if account else "USD",
                config=config,
                limits=snap.limits,
                mode=str(snap.mode.mode),
                paused=snap.paused,
                notes=[*limits_drift_notes(snap.limits, s.limits()), *self.notes],
            )
        )

    # ------------------------------------------------------------------ jobs
    def notify_info(self, text: str) -> None:
        self.bus.publish(Event(EventKind.INFO, self.clock(), {}, text))

    async def five_minute_job(self, now: datetime | None = None) -> None:
        now = now or self.clock()  # the market slot's time when the report clock runs it
        account = await self.broker.account()
        await self.journal.record_equity(
            now, account.balance, account.equity, len(self.engine.positions), account.floating_pl
        )
        if self.news is not None:
            await asyncio.to_thread(self.news.refresh)
            for e in self.news.upcoming(now, timedelta(minutes=30)):
                from bot.messages import news_event

                self.bus.publish(
                    news_event(
                        now,
                        active=False,
                        title=e.title,
                        reason=f"high-impact {e.country} event at {e.time:%H:%M} UTC",
                    )
                )
        if self.trainer is not None:
            self.trainer.check(
                now, market_open=market_status(now).is_open, open_positions=len(self.engine.positions)
            )

    async def market_update_job(self) -> None:
        from bot.reports import market_update

        self.notifier.notify_text(market_update(self.engine.snapshot()), silent=True, kind="market_update")

    async def hourly_job(self) -> None:
        from bot.reports import hourly_analysis

        decisions = await self.journal.decisions(limit=4)
        self.notifier.notify_text(
            hourly_analysis(self.engine.snapshot(), decisions, started_wall=self.ctx.started),
            silent=True,
            kind="hourly",
        )

    async def daily_job(self) -> None:
        from bot.reports import daily_summary, day_report

        yesterday = wib_date(self.clock()) - timedelta(days=1)  # runs just after 00:00 WIB (market clock)
        snapshot = self.engine.snapshot()
        await self.journal.record_daily_summary(
            (await day_report(self.journal, yesterday, snapshot)).summary()
        )
        html, png = await daily_summary(self.journal, yesterday, snapshot)
        if png:
            self.notifier.notify_photo(png, "", kind="daily")
        self.notifier.notify_text(html, kind="daily")

    # ------------------------------------------------------------------ run and stop
    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now")
            if self.console is not None:
                self.console.restore_terminal()
            os._exit(130)
        log.info("stopping (press Ctrl-C again to exit at once)")
        self.stop_event.set()

    async def run(self, max_seconds: float | None = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)
        try:
            await self.start()
        except BaseException:  # StartupError names what to fix; the caller prints it
            await self._close_partial()
            raise
        try:
            if max_seconds is None:
                await self.stop_event.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), max_seconds)
        finally:
            await self.shutdown("stopped by signal" if self._signals else "run finished")
        return 0

    async def shutdown(self, reason: str, job_timeout: float = 15.0) -> None:
        try:
            await self._stop_jobs(job_timeout)
            snap = self.engine.snapshot()
            self.bus.publish(
                shutdown_event(
                    self.clock(),
                    balance=snap.account.balance if snap.account else None,
                    started=self.ctx.started,
                    now_wall=utc_now(),
                    trades_today=snap.risk.daily_trades,
                    wins_today=snap.risk.daily_wins,
                    profit_today=snap.risk.daily_realized,
                    mode=str(snap.mode.mode),
                    reason=reason,
                )
            )
            if self.controller is not None:
                await self.controller.stop()
            if self.ctx.backtester is not None:
                self.ctx.backtester.close()  # a running backtest is dropped, not waited for
        finally:
            await self._last_journal_try()
            await self._stop_tasks()
            await self._close_partial()
            gc.unfreeze()  # what start() froze can be collected again once this bot is gone

    async def _stop_tasks(self, timeout: float = 5.0) -> None:
        """The approvals writer stores what was published before it stops (cancelled mid-write, its
        connection would go back to the pool with a CancelledError); the other tasks, which only wait
        (the dry run's paper market), are cancelled."""
        queue = self._approvals_queue
        if queue is not None:
            self.bus.unsubscribe(queue)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.put(None), timeout)
            writer = [t for t in self._tasks if t.get_name() == "approvals-journal"]
            if writer:
                await asyncio.wait(writer, timeout=timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _stop_jobs(self, timeout: float) -> None:
        """No new job runs; the running ones (an order, a journal write) finish before anything closes."""
        scheduler = self.scheduler
        if scheduler is None or not scheduler.running:
            return
        scheduler.pause()
        if self.market_loop is not None:  # a replay's job may hold thousands of due ticks: end after this one
            self.market_loop.halt()
        deadline = asyncio.get_running_loop().time() + timeout
        await asyncio.sleep(0)  # a job handed to the loop just before the pause registers itself first
        # a job may start others (the report tasks of the replay's last tick): wait until none runs
        while running := [t for t in self.running_jobs if not t.done() and t is not asyncio.current_task()]:
            left = deadline - asyncio.get_running_loop().time()
            _, pending = await asyncio.wait(running, timeout=max(left, 0))
            if pending:  # only after the deadline
                log.warning(
                    "shutdown: %d job(s) still running after %.0f s are cancelled", len(pending), timeout
                )
                break
        scheduler.shutdown(wait=False)

    async def _last_journal_try(self) -> None:
        guard = self.guard
        if guard is None:
            return
        if not await guard.drain():  # the skip decisions still being written aside
            log.error("shutdown: decision rows still being written after %.0f s", SHUTDOWN_GRACE)
        if not guard.holding:
            return
        lost = await guard.flush_now()
        if lost:
            log.error(
                "journal still cannot write at shutdown: %d held record(s) not booked (%s); the start-up "
                "reconcile books their closes from the broker's deals",
                len(lost),
                ", ".join(lost[:10]),
            )

    async def _disconnect_broker(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection is closed as far as it goes
            await self.broker.disconnect()

    async def _close_partial(self) -> None:
        """Close what start() opened, the journal first, whatever it got to (again: nothing)."""
        await self._opened.aclose()


async def run_bot(settings: Settings, max_seconds: float | None = None, console_input: bool = True) -> int:
    return await App(settings, console_input=console_input).run(max_seconds)
