"""The trading engine: one code path for live, dry-run and backtest.

The scheduler (or a backtest) calls two steps: `on_tick()` every second (broker-side closes,
flash-crash guard, position manager, exits, the WIB day roll) and `on_bar(bars)` when an M15 bar
closes (analysis once, all gates, sizing, order); the two never interleave (one lock). Every record
is awaited on the `Recorder` before its event is published; the engine never waits on Telegram.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from trading.analysis import MarketAnalysis, close_move_pct
from trading.broker.base import Broker
from trading.close_booking import (
    DEAL_LOOKBACK,
    ESTIMATE_RECHECK,
    PL_SOURCE,
    CloseBooking,
    closed_trade_from_deals,
)
from trading.domain import AccountInfo, ClosedTrade, Position, SymbolSpec, Tick
from trading.engine_host import JudgeKey, MarketClock
from trading.engine_snapshot import EngineSnapshot
from trading.events import Event, EventBus, EventKind
from trading.exits import PositionTracker
from trading.flash_crash import TickWindow
from trading.gates import EntryContext, GateResult, NewsStatus, evaluate_gates, first_block
from trading.late_fills import UnknownOrder
from trading.order_entry import OrderEntry
from trading.parameters import GATE_NAMES, StrategyParams
from trading.position_inputs import PositionInputs
from trading.position_watch import PositionWatch, market_minutes
from trading.records import (
    UNRECORDED_ENTRY,
    Decision,
    MemoryRecorder,
    Recorder,
    decision_features,
    decisions_aside,
)
from trading.risk.approvals import ApprovalRegistry
from trading.risk.modes import (
    ModeDecision,
    RiskLimits,
    RiskMode,
    RiskState,
    day_rolls,
    effective_mode,
    roll_day,
    start_cooldown,
)
from trading.risk.sizing import LotSize, kelly_estimate, size_position
from trading.risk_commands import ChangeResult, RiskCommands
from trading.saved_state import SavedState
from trading.timezones import to_wib, utc_now
from trading.timing import PhaseTimer

log = logging.getLogger(__name__)

Analyzer = Callable[[pl.DataFrame], MarketAnalysis]
NewsCheck = Callable[[datetime], NewsStatus]


# the gates before the lot's own read no lot: a block among them needs no sizing
_LOT_FREE_GATES = GATE_NAMES[: GATE_NAMES.index("lot_size")]
_LOT_GATES = GATE_NAMES[len(_LOT_FREE_GATES) :]


class TradingEngine(PositionWatch, CloseBooking, RiskCommands, SavedState, OrderEntry):
    """Live behaviour: a step a second, a decision a bar. Parts of it in their own modules: judging and
    managing each open position (`PositionWatch`), booking closes (`CloseBooking`), commands and
    approvals (`RiskCommands`), the saved state (`SavedState`), sending orders (`OrderEntry`). What they
    read and call on the engine is declared once, in `trading.engine_host.EngineHost`."""

    def __init__(
        self,
        broker: Broker,
        analyzer: Analyzer,
        *,
        params: StrategyParams | None = None,
        limits: RiskLimits | None = None,
        recorder: Recorder | None = None,
        bus: EventBus | None = None,
        clock: Callable[[], datetime] = utc_now,
        market_clock: MarketClock | None = None,
        news: NewsCheck | None = None,
        comment: str = "xau-bot",
        approval_ttl: timedelta = timedelta(minutes=10),
        approval_clock: Callable[[], datetime] | None = None,
        analyze_in_thread: bool = False,
        full_decisions: bool = True,
        timer: PhaseTimer | None = None,
    ) -> None:
        self.broker = broker
        self.analyzer = analyzer
        # the live analyzer's rebuilds (a window's work) run in a worker thread, so the event loop (the
        # 1-second job's other work, Telegram) is not held by them; the decision still runs on the loop
        self.analyze_in_thread = analyze_in_thread
        self.params = params or StrategyParams()
        self.limits = limits or RiskLimits()
        self.recorder: Recorder = recorder or MemoryRecorder()
        self.bus = bus or EventBus()
        self.clock = clock
        self.market_clock = market_clock
        self.news = news
        self.comment = comment
        self.approvals = ApprovalRegistry(approval_ttl)
        # approvals wait for a person: they expire in wall time even when a replayed market runs faster
        self.approval_clock = approval_clock or clock
        # False where the decisions only count for their verdict (a backtest's): the gates stop at the
        # first block and no decision carries features (only the live journal's /why reads them)
        self.full_decisions = full_decisions
        self.timer = timer if timer is not None else PhaseTimer()  # the loop's phases, for /status
        self.paused = False
        self.paused_by = ""
        self.spec: SymbolSpec = SymbolSpec()
        self.account: AccountInfo | None = None
        self.state: RiskState | None = None
        self.analysis: MarketAnalysis | None = None
        self.last_decision: Decision | None = None
        self.positions: dict[int, Position] = {}
        self.trackers: dict[int, PositionTracker] = {}
        self.recent_profits: deque[float] = deque(maxlen=100)
        self.flash_window = TickWindow()  # the flash-crash guard's ticks
        self._closing: set[int] = set()
        self._mode: ModeDecision = ModeDecision(RiskMode.NORMAL, "starting")
        self._proposed_reset = False
        self._last_deal_check: datetime | None = None  # last re-read of estimated closes
        self._estimated: dict[int, ClosedTrade] = {}  # booked at an estimated price, deals awaited
        self._restored_positions: list[Position] = []
        self._unknown_orders: list[UnknownOrder] = []  # entries booked as failed that may still fill
        self._step_lock = asyncio.Lock()
        self.last_tick: Tick | None = None
        self._judge_inputs: dict[int, tuple[JudgeKey, PositionInputs]] = {}  # position_inputs' cache
        self.started = clock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, saved_state: dict[str, Any] | None = None) -> None:
        """Read the symbol and account, restore saved state, adopt open positions."""
        self.spec = await self.broker.symbol_spec()
        self.account = await self.broker.account()
        now = self.clock()
        if saved_state:
            self.restore(saved_state)
        if self.state is None:
            self.state = RiskState.fresh(self.account.balance, now)
        self.state = roll_day(self.state, now, self.account.balance)
        live = await self.broker.positions()
        for p in live:
            self.positions[p.ticket] = p
            self.trackers.setdefault(p.ticket, PositionTracker(p.ticket))
        self._mode = self.mode()
        await self._book_closed_while_down(self._restored_positions, {p.ticket for p in live})
        self._restored_positions = []
        await self._save_state()

    def _publish(self, kind: EventKind, text: str, **data: object) -> None:
        if self.bus.listened():  # (a backtest's bus has nobody: thousands of events unbuilt)
            self.bus.publish(Event(kind, self.clock(), data, text))

    # ------------------------------------------------------------------ read side
    def mode(self) -> ModeDecision:
        state = self.state
        assert state is not None
        balance = self.account.balance if self.account else state.day_start_balance
        return effective_mode(state, self.limits, balance, self.clock())  # kept outside a cooldown

    def snapshot(self) -> EngineSnapshot:
        assert self.state is not None
        now = self.clock()
        return EngineSnapshot(
            time=now,
            account=self.account,
            positions=tuple(self.positions.values()),
            mode=self.mode(),
            paused=self.paused,
            risk=self.state,
            limits=self.limits,
            analysis=self.analysis,
            last_decision=self.last_decision,
            pending_approvals=tuple(self.approvals.pending(self.approval_clock())),
            timing=self.timer.summary(),
            started=self.started,
            strategy_edge=str(getattr(self.analyzer, "edge", "")),
        )

    def published_mode(self) -> ModeDecision:
        """The risk mode as last published (a step publishes the change when `mode()` differs)."""
        return self._mode

    def closes_in_flight(self) -> bool:
        return bool(self._closing)

    def approval_due(self) -> bool:
        """An approval is pending (a step expires it) or a total stop is about to propose one."""
        assert self.state is not None
        return self.approvals.has_pending() or (self.state.total_stop and not self._proposed_reset)

    # ------------------------------------------------------------------ per second
    async def on_tick(self) -> None:
        assert self.state is not None, "call start() first"
        # one step at a time: a tick whose position list was fetched before an entry of a bar step
        # running meanwhile would otherwise take the new position for one the broker closed
        async with self._step_lock:
            await self._on_tick()

    async def _on_tick(self) -> None:
        with self.timer.phase("fetch"):
            tick = await self.broker.tick()
            self.account = await self.broker.account()
            positions = await self.broker.positions()
        self.last_tick = tick
        now = self.clock()
        with self.timer.phase("exits"):
            assert self.state is not None
            if day_rolls(self.state, now):  # (a step of its own once a day only)
                await self._roll_day(now)
            await self._detect_broker_closes(positions, now)
            if not await self._tick_flash_crash(tick, now):
                for pos in positions:
                    if pos.ticket in self.positions:
                        await self._manage(pos, tick, now)
            await self._check_mode_change()
            if self.approvals.has_pending():
                for expired in self.approvals.expire(self.approval_clock()):
                    self._publish(
                        EventKind.APPROVAL_RESOLVED, f"approval {expired.id} expired", approval=expired
                    )

    async def _roll_day(self, now: datetime) -> None:
        assert self.state is not None and self.account is not None
        rolled = roll_day(self.state, now, self.account.balance)
        if rolled is not self.state:
            self.state = rolled
            await self._save_state()
            self._publish(EventKind.INFO, f"new trading day {rolled.day} (WIB)", day=str(rolled.day))

    def tick_move_pct(self) -> float:
        return self.flash_window.move_pct()

    async def _tick_flash_crash(self, tick: Tick, now: datetime) -> bool:
        self.flash_window.add(tick.time, tick.mid, self.params.flash_crash_window_seconds)
        move = self.tick_move_pct()
        if move >= self.params.flash_crash_pct and self.params.gate_enabled("flash_crash_guard"):
            await self._flash_crash(f"{move:.2f}% within {self.params.flash_crash_window_seconds} s", now)
            self.flash_window.clear()
            return True
        return False

    async def _flash_crash(self, why: str, now: datetime) -> None:
        assert self.state is not None
        already = self.state.cooldown_until is not None and self.state.cooldown_until > now
        closed = await self.close_all(by="flash_crash_guard", reason=f"flash crash: {why}")
        self.state = start_cooldown(self.state, self.limits, now, f"flash crash {why}")
        await self._save_state()
        if not already or closed:
            self._publish(
                EventKind.EMERGENCY_CLOSE,
                f"Flash crash {why}: closed {closed} position(s), cooldown",
                reason=why,
                closed=closed,
            )

    # ------------------------------------------------------------------ per bar
    async def on_bar(self, bars: pl.DataFrame) -> Decision:
        assert self.state is not None, "call start() first"
        async with self._step_lock:
            return await self._on_bar(bars)

    async def judge_at_start(self, bars: pl.DataFrame) -> Decision:
        """Start-up: the last closed bar analysed and its gates judged at once, so /status, /chart and
        /filters answer from the first second. Never entered and not journaled as a decision: the bar
        closed before the start, so an order now would fill later than its decision assumed, and a
        restart inside the bar it was decided on before would otherwise enter it twice."""
        assert self.state is not None, "call start() first"
        async with self._step_lock:
            with self.timer.phase("analysis"):
                self.analysis = await self._analyse(bars)
            return await self._decide(self.analysis, self.clock(), at_start=True)

    async def _analyse(self, bars: pl.DataFrame) -> MarketAnalysis:
        steps = getattr(self.analyzer, "steps", None)  # a bar the live analyzer steps (~2 ms) needs no thread
        threaded = self.analyze_in_thread and not (steps is not None and steps(bars))
        return await asyncio.to_thread(self.analyzer, bars) if threaded else self.analyzer(bars)

    async def _on_bar(self, bars: pl.DataFrame) -> Decision:
        with self.timer.phase("analysis"):
            analysis = await self._analyse(bars)
        self.analysis = analysis
        now = self.clock()
        with self.timer.phase("entry"):
            bar_move = close_move_pct(analysis.recent_closes, self.params.flash_crash_bars)
            if bar_move >= self.params.flash_crash_pct and self.params.gate_enabled("flash_crash_guard"):
                await self._flash_crash(
                    f"{bar_move:.2f}% over the last {self.params.flash_crash_bars} bars", now
                )
            decision = await self._decide(analysis, now)
        return decision

    def _size(
        self, analysis: MarketAnalysis, mode: RiskMode, balance: float, free_margin: float
    ) -> LotSize | None:
        setup = analysis.setup
        if setup is None:
            return None
        session_mult = analysis.session.multiplier
        hour = to_wib(self.clock()).hour
        if hour >= 22 or hour <= 5:
            session_mult *= 0.5
        stop_distance = abs(setup.entry - setup.stop_loss)
        if stop_distance < self.params.min_sl_distance:  # sized at the distance _stops_for will really use
            stop_distance = 2 * self.params.min_sl_distance
        return size_position(
            balance=balance,
            free_margin=free_margin,
            price=setup.entry,
            stop_distance=stop_distance,
            spec=self.spec,
            limits=self.limits,
            mode=mode,
            kelly=kelly_estimate(list(self.recent_profits), prior_payoff=max(setup.risk_reward, 1.0)),
            regime_multiplier=analysis.regime.lot_multiplier,
            session_multiplier=session_mult,
            leverage=self.account.leverage if self.account else 100,
        )

    async def _decide(self, analysis: MarketAnalysis, now: datetime, at_start: bool = False) -> Decision:
        assert self.state is not None
        account = self.account = await self.broker.account()
        mode = self.mode()
        paused, open_positions, last_entry = self.paused, len(self.positions), self.state.last_entry_time
        tick_move = self.tick_move_pct()
        news = self.news(now) if self.news else None

        def context(lot: LotSize | None) -> EntryContext:
            return EntryContext(
                now=now,
                analysis=analysis,
                params=self.params,
                mode=mode,
                paused=paused,
                open_positions=open_positions,
                max_positions=self.limits.max_positions,
                last_entry_time=last_entry,
                lot=lot,
                confidence_threshold=analysis.quality.threshold,
                tick_move_pct=tick_move,
                news=news,
            )

        full = self.full_decisions
        lot, gates, block = self._gates(context, account, full)
        setup = analysis.setup
        action = "skip" if block else "enter"
        reason = f"{block.name}: {block.reason}" if block else (setup.reason if setup else "")
        if at_start:
            verdict = reason if block else "every gate passes, no order"
            action, reason = "skip", f"start-up, judged only (the bar closed before the start): {verdict}"
        features = decision_features(analysis) if full else {}  # the journal's (/why): a backtest keeps none

        def seen(id: int | None = None) -> Decision:
            return Decision(
                bar_time=analysis.bar_time,
                action=action,
                side=setup.side if setup else None,
                reason=reason,
                gates=gates,
                regime=analysis.regime.name,
                p_up=analysis.ml.p_up if analysis.ml else None,
                threshold=analysis.quality.threshold,
                setup_reason=setup.reason if setup else "",
                lot=lot.lots if lot else 0.0,
                lot_steps=lot.steps if lot else (),
                model_version=analysis.model_version,
                id=id,
                features=features,
            )

        if at_start:
            self.last_decision = seen()
            return self.last_decision
        aside = decisions_aside(self.recorder) if action == "skip" else None
        if aside is not None:  # no order: its row is written aside, the entry step does not wait for it
            skipped = self.last_decision = seen()

            def landed(ident: int | None) -> None:
                if ident is not None and self.last_decision is skipped:  # still this bar's
                    self.last_decision = seen(ident)

            aside.record_decision_aside(skipped, landed)
            return skipped
        # built twice rather than `replace`d with its id: half the cost, once a bar; a skip that only
        # counts for its verdict (no full decisions: a backtest's) keeps the record the recorder took
        recorded = seen()
        ident = await self.recorder.record_decision(recorded)
        decision = seen(ident) if self.full_decisions or action == "enter" else recorded
        if decision.id is None and decision.action == "enter":  # no order without its committed decision row
            decision = replace(decision, action="skip", reason=UNRECORDED_ENTRY)
        self.last_decision = decision
        if decision.action == "enter" and setup is not None and lot is not None:
            decision = await self._enter(decision, analysis, lot, now)
        return decision

    def _gates(
        self, context: Callable[[LotSize | None], EntryContext], account: AccountInfo, full: bool
    ) -> tuple[LotSize | None, tuple[GateResult, ...], GateResult | None]:
        """The lot, the gates' verdicts on the bar's `context` with a lot, and the first block. A recorder
        that keeps no decisions (a backtest's) needs only the verdict: the gates up to the first block
        (which ends them), and no sizing (nor a context with the lot) when a gate before the lot's blocks."""
        ctx = context(None)
        if full:
            lot = self._size(ctx.analysis, ctx.mode.mode, account.balance, account.free_margin)
            gates = evaluate_gates(context(lot))
            return lot, gates, first_block(gates)
        head = evaluate_gates(ctx, until_block=True, names=_LOT_FREE_GATES)
        if head and head[-1].blocked:
            return None, head, head[-1]
        lot = self._size(ctx.analysis, ctx.mode.mode, account.balance, account.free_margin)
        tail = evaluate_gates(context(lot), until_block=True, names=_LOT_GATES)
        return lot, head + tail, tail[-1] if tail and tail[-1].blocked else None


__all__ = [
    "DEAL_LOOKBACK",
    "ESTIMATE_RECHECK",
    "PL_SOURCE",
    "ChangeResult",
    "EngineSnapshot",
    "GateResult",
    "TradingEngine",
    "closed_trade_from_deals",
    "market_minutes",
]
