"""The service: start-up, the scheduled jobs, reconciliation and shutdown (`python main.py run`).

Start-up order (spec §6, made safe): settings → broker (3 tries) → journal (migrated) → models
(active version or SMC-only) → engine state restored → reconcile the broker's positions with the
journal → scheduler → controller (Telegram, or the console when no token is set) → startup message.
Shutdown on SIGINT/SIGTERM (or Ctrl-C at the console prompt): no new job starts, the running one ends
after its current tick, the stop message, disconnect, close the database; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from bot import logbuffer, polling_log
from bot.brokers import build_broker
from bot.catchup import state_line
from bot.config import Settings
from bot.context import BotContext
from bot.journal_guard import HoldingBus, JournalGuard
from bot.journal_recorder import JournalRecorder
from bot.messages import limits_drift_notes, shutdown_event, startup_event
from bot.notifier import NOTIFY_STATE_KEY, ChatBudget, ErrorMonitor, Notifier, NotifyControl
from bot.scheduler import TradingJob, build_scheduler
from bot.store import Journal
from bot.store.health import JournalWriteError
from bot.store.outbox import OutboxStore
from bot.transport import ConsoleTransport, TelegramTransport
from handlers.clock import set_market_replay
from trading.analyzer import MarketAnalyzer
from trading.bars import closed_bars
from trading.domain import ClosedTrade, Deal, DealEntry, Position
from trading.engine import DEAL_LOOKBACK, PL_SOURCE, TradingEngine, closed_trade_from_deals
from trading.events import Event, EventBus, EventKind
from trading.sessions import market_status
from trading.timezones import utc_now, wib_date

log = logging.getLogger(__name__)

CONSOLE_USER = 1000
RECONCILE_DAYS = 31  # closed trades checked against the broker's deals at every start


class StartupError(RuntimeError):
    """The bot cannot start; the message says what to fix."""


class App:
    connect_backoff = 2.0  # seconds before the 2nd broker connect try; doubled before the 3rd

    def __init__(self, settings: Settings, *, console_input: bool = True) -> None:
        self.settings = settings
        self.console_input = console_input
        self.logs = logbuffer.install()  # first: /logs shows the start-up lines the terminal showed
        self.bus: EventBus = HoldingBus()  # events about bookings the journal has not taken yet wait
        self.errors = ErrorMonitor(self.bus)
        self.stop_event = asyncio.Event()
        self.notes: list[str] = []
        self.last_bars: pl.DataFrame | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.running_jobs: set[asyncio.Task[Any]] = (
            set()
        )  # scheduled jobs running now (bot.scheduler.in_flight)
        self._signals = 0
        self.market_loop: Any = None  # trading.simulation.MarketLoop of a replayed paper market
        self.shadow: Any = None  # bot.shadow.ShadowService: challengers stepped after the live engine

    # ------------------------------------------------------------------ start-up
    async def start(self) -> None:
        s = self.settings
        setup = build_broker(s)
        self.broker, self.clock, self.feed = setup.broker, setup.clock, setup.feed
        self.market_state = setup.market_state
        set_market_replay(s.paper_replay_speed if self.feed is not None else None)  # labels the clock lines
        await self._connect_broker(setup.description)
        try:
            s.database_path.parent.mkdir(parents=True, exist_ok=True)
            self.journal = await Journal(s.database_path).open()
            setup.save_market_init()
        except Exception as exc:
            raise StartupError(f"DATABASE_PATH={s.database_path}: cannot open the journal: {exc}") from exc
        self.recorder = JournalRecorder(self.journal, s.symbol)
        self.guard = JournalGuard(self.recorder, self.bus, clock=utc_now)
        try:
            self.slot, self.registry, self.trainer = self._load_models()
        except Exception as exc:
            raise StartupError(f"MODELS_DIR={s.models_dir}: cannot load the models: {exc}") from exc
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
            recorder=self.guard,
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
        await self._reconcile()
        self.ctx = BotContext(
            self.engine,
            self.journal,
            s,
            self.analyzer,
            utc_now(),
            self.trainer,
            self.registry,
            backtester=self._backtester(),
            logs=self.logs,
            bars_available=lambda: self._bars_for_training(100_000).height,
            models=self.slot,
        )
        if s.shadow_max_challengers > 0:  # challengers on paper beside live (bot.shadow), after live's state
            from bot.shadow import build_shadow

            self.shadow = self.ctx.shadow = await build_shadow(self)
        self._approvals_queue = self.bus.subscribe()
        self._tasks.append(
            asyncio.create_task(self._persist_approvals(self._approvals_queue), name="approvals-journal")
        )
        self._tasks.append(asyncio.create_task(self.guard.run(), name="journal-guard"))
        self.trading_job = TradingJob(self)
        if setup.sim_clock is not None:  # a replayed market: one loop on its clock, as in a backtest
            from trading.simulation import MarketLoop, history_window

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
            self._tasks.append(asyncio.create_task(self.broker.run(), name="paper-market"))
        await self._judge_last_bar()
        await self._start_controller()
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

    def _load_models(self) -> tuple[Any, Any, Any]:
        from models.autotrainer import SMC_ONLY_NOTE, AutoTrainer, AutoTrainerConfig, ensure_models
        from models.registry import ModelRegistry, ModelSlot

        registry = ModelRegistry(self.settings.models_dir)
        bundle, warning = ensure_models(registry, None, train_if_missing=False)
        if warning:
            self.notes.append(warning)
        slot = ModelSlot(bundle, note=(warning or "").removesuffix(SMC_ONLY_NOTE))  # why nothing is loaded
        trainer = None
        if self.settings.auto_retrain:
            config = AutoTrainerConfig(
                daily_hour_wib=self.settings.retrain_hour_wib, min_bars=self.settings.min_bars_for_training
            )
            loop = asyncio.get_running_loop()  # the trainer calls back from its supervisor thread
            shadow_first = self.settings.shadow_new_models and self.settings.shadow_max_challengers > 0
            trainer = AutoTrainer(
                registry,
                slot,
                fetch_bars=self._bars_for_training,
                config=config,
                on_event=lambda e: loop.call_soon_threadsafe(self.bus.publish, e),
                to_shadow=self._model_to_shadow(loop) if shadow_first else None,
            )
        return slot, registry, trainer

    def _model_to_shadow(self, loop: asyncio.AbstractEventLoop) -> Any:
        """The auto-trainer's hand-off (from its thread): start a new model as a challenger (bot.shadow)."""

        def to_shadow(version: str) -> str:
            if self.shadow is None:
                return f"shadow is off; /shadow add {version} starts it"
            future = asyncio.run_coroutine_threadsafe(
                self.shadow.add(model=version, params=None, by="autotrainer"), loop
            )
            spec = future.result(timeout=60)
            return f"trading in shadow as challenger #{spec.number}; /shadow shows how it does"

        return to_shadow

    def _backtester(self) -> Any:
        """/backtest over the bot's own closed bars, with the live parameters and the active models."""
        from bot.backtests import BotBacktester
        from charts.distribution import pnl_distribution_chart
        from charts.equity import equity_chart
        from trading.backtest import BacktestConfig

        def config() -> BacktestConfig:
            balance = self.engine.account.balance if self.engine.account else 5_000.0
            s = (
                self.settings
            )  # the paper account's costs: a backtest should not look cheaper than the account
            return BacktestConfig(
                balance=balance,
                commission_per_lot=s.paper_commission_per_lot,
                slippage_points=s.paper_slippage_points,
                leverage=s.paper_leverage,
                params=self.engine.params,
                limits=self.engine.limits,
            )

        def sources() -> tuple[Any, Any, str]:
            from models.live import SlotRegime, SlotSignal

            bundle = self.slot.current
            if bundle is None:
                return None, None, "no models: SMC-only"
            return SlotRegime(self.slot), SlotSignal(self.slot), f"model {bundle.version}"

        return BotBacktester(
            self._bars_for_training, config, sources, chart=equity_chart, distribution=pnl_distribution_chart
        )

    def _bars_for_training(self, n: int) -> pl.DataFrame:
        if self.feed is not None:  # closed bars only: the forming bar's close is not final yet
            return closed_bars(self.feed.bars_now(n + 1), self.clock()).tail(n)
        return self.last_bars.tail(n) if self.last_bars is not None else pl.DataFrame()

    def _news_calendar(self) -> Any:
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

    async def _reconcile(self) -> None:
        """Journal vs broker: adopt unknown positions, book the ones closed while we were down."""
        open_in_journal = {t.ticket: t for t in await self.journal.open_trades()}
        at_broker = dict(self.engine.positions)
        for ticket, pos in at_broker.items():
            if ticket not in open_in_journal:
                await self.journal.record_trade_open(pos)
                self.notes.append(
                    f"adopted #{ticket} {pos.side} {pos.volume:g} at {pos.open_price:.2f} (not in the journal)"
                )
        missing = {ticket: t for ticket, t in open_in_journal.items() if ticket not in at_broker}
        await self._reconcile_missing(missing)
        await self._reconcile_deals()

    async def _reconcile_missing(self, missing: dict[int, Any]) -> None:
        if not missing:
            return
        since = min(t.open_time for t in missing.values()) - DEAL_LOOKBACK
        deals: dict[int, list[Deal]] = defaultdict(list)
        for d in await self.broker.deals_since(since):
            deals[d.position_ticket].append(d)
        for ticket, t in missing.items():
            pos = Position(
                ticket=ticket,
                symbol=t.symbol,
                side=t.side,
                volume=t.volume,
                open_price=t.open_price,
                open_time=t.open_time,
                sl=t.sl or 0.0,
                tp=t.tp or 0.0,
                magic=t.magic,
                comment=t.comment,
            )
            trade = closed_trade_from_deals(
                pos, deals.get(ticket, []), "broker", "closed at the broker while the bot was down"
            )
            if trade is not None:  # booked now, from the deals: not left to a tick that may never come
                await self.engine.book_close_from_deals(trade)
                self.notes.append(
                    f"#{ticket} closed while the bot was down: booked from the broker's deals "
                    f"(${trade.profit:+.2f})"
                )
                continue
            # no closing deal (another account, a new paper account, history purged): the P/L is unknown.
            # Close the row at its open price with no profit, and do not count it in today's risk.
            await self.journal.record_trade_close(
                ClosedTrade(
                    ticket=ticket,
                    symbol=t.symbol,
                    side=t.side,
                    volume=t.volume,
                    open_price=t.open_price,
                    close_price=t.open_price,
                    open_time=t.open_time,
                    close_time=max(self.clock(), t.open_time),
                    profit=0.0,
                    reason="missing_at_broker",
                    sl=t.sl or 0.0,
                    tp=t.tp or 0.0,
                    extra={"detail": "open in the journal, not at the broker, no closing deal found"},
                )
            )
            self.notes.append(
                f"#{ticket} is open in the journal but unknown to the broker (no closing deal): "
                "closed in the journal with P/L unknown (booked as 0, not counted); check the "
                "broker's history"
            )

    async def _reconcile_deals(self) -> None:
        """Every closed trade of the last RECONCILE_DAYS equals its broker deals to the cent: a close
        booked at an estimate (or wrongly) is corrected and audited, a trade the broker has and the
        journal lacks is booked; closes whose deals have not appeared yet stay watched by the engine."""
        since = self.clock() - timedelta(days=RECONCILE_DAYS)
        by_position: dict[int, list[Deal]] = defaultdict(list)
        for d in await self.broker.deals_since(since):
            by_position[d.position_ticket].append(d)
        for ticket, deals in sorted(by_position.items()):
            ins = [d for d in deals if d.entry is DealEntry.IN]
            if ticket in self.engine.positions or not ins or all(d.entry is DealEntry.IN for d in deals):
                continue  # still open, or opened before the window (its entry charges are not all here)
            row = await self.journal.trade_by_ticket(ticket)
            if row is not None and row.is_open:
                continue  # back in the engine's book: the next tick books it from these deals
            first = min(ins, key=lambda d: (d.time, d.ticket))
            pos = Position(
                ticket=ticket,
                symbol=first.symbol,
                side=first.side,
                volume=row.volume if row else round(sum(d.volume for d in ins), 8),
                open_price=row.open_price if row else first.price,
                open_time=row.open_time if row else first.time,
                sl=row.sl if row else 0.0,
                tp=row.tp if row else 0.0,
                magic=first.magic,
            )
            if row is None:
                trade = closed_trade_from_deals(
                    pos, deals, "broker", "opened and closed while the bot was down"
                )
                assert trade is not None
                await self.engine.book_close_from_deals(trade)
                await self.journal.audit(
                    "reconcile",
                    user_id=None,
                    chat_id=None,
                    allowed=True,
                    args=f"#{ticket}",
                    result=f"booked from the broker's deals: {trade.profit:+.2f} (not in the journal)",
                )
                self.notes.append(
                    f"#{ticket} opened and closed at the broker while the bot was down: "
                    f"booked from its deals (${trade.profit:+.2f})"
                )
                continue
            trade = closed_trade_from_deals(
                pos, deals, row.exit_reason or "broker", str(row.extra.get("detail", ""))
            )
            assert trade is not None
            booked = float(row.profit or 0.0)
            if await self.engine.correct_close(trade, booked):
                self.notes.append(
                    f"#{ticket} P/L corrected from the broker's deals: ${booked:+.2f} → "
                    f"${trade.profit:+.2f} (audited)"
                )
        for t in await self.journal.closed_trades(since=since):
            if t.extra.get(PL_SOURCE) == "estimate" and t.ticket not in by_position:
                self.engine.watch_estimate(t.to_closed_trade())

    async def _start_controller(self) -> None:
        s = self.settings
        from bot.telegram import build_dispatcher, make_bot, start_polling

        if s.telegram_token is not None:
            quiet_polling = polling_log.install()  # one line per polling outage, not one per try
            bot = make_bot(s.telegram_token.get_secret_value(), s.telegram_api_url)
            self.polling = await start_polling(self.ctx, bot)
            transport: Any = TelegramTransport(bot)
            chat = s.notify_chat_id
            self.console = None
        else:
            from bot.console import ConsoleController

            transport = ConsoleTransport(photo_dir=s.database_path.parent / "photos", clock=utc_now)
            chat = CONSOLE_USER
            quiet_polling = None
            console_settings = s.model_copy(update={"telegram_allowed_users": [CONSOLE_USER]})
            dp = build_dispatcher(dataclasses.replace(self.ctx, settings=console_settings))
            self.console = ConsoleController(dp, transport, CONSOLE_USER, on_interrupt=self._on_signal)
            if self.console_input:
                self.console.start()
            self.polling = None
            self.notes.append(
                "no TELEGRAM_TOKEN: console mode (type /help; photos are saved under "
                f"{s.database_path.parent / 'photos'}, /export files under "
                f"{s.database_path.parent / 'exports'})"
            )
        self.transport = transport
        budget = ChatBudget(per_minute=s.notify_per_minute, report_gap=s.notify_report_gap_minutes * 60)
        self.notifier = Notifier(
            transport,
            chat or CONSOLE_USER,
            quiet_kinds=s.quiet_notifications,
            muted_kinds=s.muted_notifications,
            budget=budget,
            outbox=OutboxStore(self.journal),
            state_line=lambda: state_line(self.engine.snapshot()),
        )
        self.notifier.load_switches(
            (await self.journal.load_state()).get(NOTIFY_STATE_KEY) or {}
        )  # /notify's
        self.ctx.extras["notify"] = NotifyControl(self.notifier, self.journal.save_state)
        await self.notifier.restore()  # what the last run could not deliver goes first
        if quiet_polling is not None:  # polling got through again: the outbox retries at once
            quiet_polling.on_recovery = self.notifier.courier.nudge
        self.notifier.attach(self.bus)

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

    async def _persist_approvals(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            event = await queue.get()
            if event is None:  # shutdown: everything published before it is stored
                return
            try:
                approval = event.data.get("approval")
                if approval is None or event.kind not in (
                    EventKind.RISK_CHANGE_PROPOSED,
                    EventKind.APPROVAL_RESOLVED,
                ):
                    continue
                stored = (
                    await self.journal.update_approval(approval)
                    if event.kind is EventKind.APPROVAL_RESOLVED
                    else False
                )
                if not stored:
                    await self.journal.save_approval(approval)
            except JournalWriteError:
                pass  # the journal logged and alarmed once for the outage
            except Exception:
                log.exception("could not store approval event %s", event.kind)

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
            console = getattr(self, "console", None)
            if console is not None:
                console.restore_terminal()
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
            await self.notifier.stop(timeout=10)
            if self.polling is not None:
                await self.polling.stop()
                await self.polling.bot.session.close()
            if self.console is not None:
                await self.console.stop()
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
        queue = getattr(self, "_approvals_queue", None)
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
        scheduler = getattr(self, "scheduler", None)
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
        guard = getattr(self, "guard", None)
        if guard is None or not guard.holding:
            return
        lost = await guard.flush_now()
        if lost:
            log.error(
                "journal still cannot write at shutdown: %d held record(s) not booked (%s); the start-up "
                "reconcile books their closes from the broker's deals",
                len(lost),
                ", ".join(lost[:10]),
            )

    async def _close_partial(self) -> None:
        with contextlib.suppress(Exception):
            await self.broker.disconnect()
        journal = getattr(self, "journal", None)
        if journal is not None:
            await journal.close()


async def run_bot(settings: Settings, max_seconds: float | None = None, console_input: bool = True) -> int:
    return await App(settings, console_input=console_input).run(max_seconds)
