"""The trading engine: one code path for live, dry-run and backtest.

The scheduler (or a backtest) calls two steps: `on_tick()` every second (broker-side closes,
flash-crash guard, position manager, exits, the WIB day roll) and `on_bar(bars)` when an M15 bar
closes (analysis once, all gates, sizing, order); the two never interleave (one lock). Every record
is awaited on the `Recorder` before its event is published; the engine never waits on Telegram.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from trading.analysis import MarketAnalysis, close_move_pct
from trading.broker.base import Broker, BrokerError, ConnectionLost
from trading.domain import (
    AccountInfo,
    ClosedTrade,
    Deal,
    DealEntry,
    DealReason,
    Position,
    Side,
    SymbolSpec,
    Tick,
)
from trading.events import Event, EventBus, EventKind
from trading.exits import ExitContext, ExitVerdict, PositionTracker, evaluate_exits
from trading.flash_crash import TickWindow
from trading.gates import EntryContext, GateResult, NewsStatus, evaluate_gates, first_block
from trading.parameters import GATE_NAMES, StrategyParams
from trading.position_inputs import PositionInputs, position_inputs
from trading.position_manager import PMAction, PMContext, PMKind, manage_position
from trading.records import Decision, MemoryRecorder, OpenedTrade, Recorder, decision_features
from trading.risk.approvals import Approval, ApprovalError, ApprovalRegistry, ApprovalStatus, RiskChange
from trading.risk.modes import (
    ModeDecision,
    RiskLimits,
    RiskMode,
    RiskState,
    approved_reset,
    effective_mode,
    limit_use,
    record_close,
    risk_state_from_dict,
    risk_state_to_dict,
    roll_day,
    start_cooldown,
)
from trading.risk.sizing import LotSize, kelly_estimate, moved_stop_refusal, size_position
from trading.sessions import market_status
from trading.timezones import to_wib, utc_now, wib_date
from trading.timing import PhaseTimer

log = logging.getLogger(__name__)

Analyzer = Callable[[pl.DataFrame], MarketAnalysis]
MarketClock = Callable[[datetime], tuple[float | None, float | None]]  # -> (min to daily close, min to weekly close)
NewsCheck = Callable[[datetime], NewsStatus]
# closes a person asked for (/close, the close buttons, /closeall): they count in the daily and total
# P/L limits, but not in the strategy's loss streak, and they restart the entry cooldown
HAND_CLOSES = frozenset({"manual", "close_all"})


def market_minutes(now: datetime) -> tuple[float | None, float | None]:
    """Minutes to the next daily and weekly close (None while the market is closed)."""
    status = market_status(now)
    return status.minutes_to_daily_close, status.minutes_to_weekly_close


# the gates before the lot's own read no lot: a block among them needs no sizing
_LOT_FREE_GATES = GATE_NAMES[:GATE_NAMES.index("lot_size")]
_LOT_GATES = GATE_NAMES[len(_LOT_FREE_GATES):]
DEAL_LOOKBACK = timedelta(days=1)  # how far before a position's open its deals are searched
ESTIMATE_RECHECK = timedelta(seconds=5)  # how often a close booked at an estimate looks for its deals
ESTIMATE_WATCH = timedelta(days=1)  # then the start-up reconcile is left to find them (bounded work)
PL_SOURCE = "pl_source"  # ClosedTrade.extra key: "deals" (the broker's) or "estimate" (deals not seen yet)


def closed_trade_from_deals(pos: Position, deals: list[Deal], name: str, reason: str) -> ClosedTrade | None:
    """The trade as the broker booked it: P/L = profit + commission + swap + fee of every deal of the
    position (the entry deal's charges belong to the trade too); None while no closing deal exists."""
    mine = sorted((d for d in deals if d.position_ticket == pos.ticket), key=lambda d: (d.time, d.ticket))
    outs = [d for d in mine if d.entry is DealEntry.OUT]
    if not outs:
        return None
    last = outs[-1]
    if last.reason is DealReason.SL and name == "broker":
        name = "broker_sl"
    elif last.reason is DealReason.TP and name == "broker":
        name = "broker_tp"
    elif last.reason is DealReason.STOP_OUT:
        name = "stop_out"
    ins = [d for d in mine if d.entry is DealEntry.IN]
    open_time = min([pos.open_time, *(d.time for d in ins)])
    return ClosedTrade(
        ticket=pos.ticket, symbol=pos.symbol, side=pos.side, volume=pos.volume,
        open_price=pos.open_price, close_price=last.price, open_time=open_time,
        close_time=max(last.time, open_time), profit=round(sum(d.net for d in mine), 2), reason=name,
        sl=pos.sl, tp=pos.tp,
        extra={"detail": reason, PL_SOURCE: "deals", "deals": [d.ticket for d in mine],
               "commission": round(sum(d.commission for d in mine), 2), "swap": round(sum(d.swap for d in mine), 2),
               "fee": round(sum(d.fee for d in mine), 2)},
    )


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    time: datetime
    account: AccountInfo | None
    positions: tuple[Position, ...]
    mode: ModeDecision
    paused: bool
    risk: RiskState
    limits: RiskLimits
    analysis: MarketAnalysis | None
    last_decision: Decision | None
    pending_approvals: tuple[Approval, ...]
    timing: dict[str, tuple[float, float]]
    started: datetime
    strategy_edge: str = ""  # the active model's out-of-sample verdict in words (the analyzer's `edge`)


@dataclass(frozen=True, slots=True)
class ChangeResult:
    applied: bool
    message: str
    approval: Approval | None = None


class TradingEngine:
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
        full_decisions: bool = True,
    ) -> None:
        self.broker = broker
        self.analyzer = analyzer
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
        # first block and a decision that enters nothing carries no features
        self.full_decisions = full_decisions
        self.timer = PhaseTimer()
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
        self._mode_memo: tuple[RiskState, RiskLimits, float, ModeDecision] | None = None  # mode()'s
        self._proposed_reset = False
        self._last_deal_check: datetime | None = None  # last re-read of estimated closes
        self._estimated: dict[int, ClosedTrade] = {}  # booked at an estimated price, deals awaited
        self._restored_positions: list[Position] = []
        self._step_lock = asyncio.Lock()
        self.last_tick: Tick | None = None
        self._closes: tuple[int, float | None, float | None] | None = None  # _market_minutes' cache
        self._judge_inputs: dict[int, tuple[tuple[Any, ...], PositionInputs]] = {}  # position_inputs' cache
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

    async def _book_closed_while_down(self, saved: list[Position], live: set[int]) -> None:
        """Positions open at the last save that the broker closed while the bot was down count too (decision 7)."""
        for pos in saved:
            if pos.ticket in live:
                continue
            deals = await self._position_deals(pos)
            if any(d.entry is DealEntry.OUT for d in deals):
                trade = await self._closed_trade(pos, "broker", "closed at the broker while the bot was down",
                                                 None, None)
                await self._book_close(trade, self.account.balance if self.account else 0.0, by="broker")

    def restore(self, saved: dict[str, Any]) -> None:
        if "risk" in saved:
            self.state = risk_state_from_dict(saved["risk"])
        self.paused = bool(saved.get("paused", False))
        self.paused_by = str(saved.get("paused_by", ""))
        if "limits" in saved:
            self.limits = RiskLimits(**saved["limits"])
        self.recent_profits.extend(float(x) for x in saved.get("recent_profits", []))
        self._restored_positions = [_position_from_dict(p) for p in saved.get("positions", [])]

    def restore_approvals(self, approvals: list[Approval]) -> None:
        """Pending approvals saved before a restart; a restored reset request is not proposed again."""
        self.approvals.restore(approvals)
        if any(a.change.kind == "reset_total" for a in approvals):
            self._proposed_reset = True

    def state_dict(self) -> dict[str, Any]:
        assert self.state is not None
        return {
            "paused": self.paused,
            "paused_by": self.paused_by,
            "risk": risk_state_to_dict(self.state),
            "limits": asdict(self.limits),
            "recent_profits": list(self.recent_profits),
            "positions": [_position_to_dict(p) for p in self.positions.values()],
        }

    async def _save_state(self) -> None:
        await self.recorder.save_state(self.state_dict())

    def _publish(self, kind: EventKind, text: str, **data: Any) -> None:
        self.bus.publish(Event(kind, self.clock(), data, text))

    # ------------------------------------------------------------------ read side
    def mode(self) -> ModeDecision:
        state = self.state
        assert state is not None
        balance = self.account.balance if self.account else state.day_start_balance
        now = self.clock()
        # the mode reads the time only inside a cooldown (its minutes left): outside one it is the same
        # for the same state, limits and balance, and it is read several times a bar
        timeless = state.cooldown_until is None or now >= state.cooldown_until
        memo = self._mode_memo
        if timeless and memo is not None and memo[0] is state and memo[1] is self.limits and memo[2] == balance:
            return memo[3]
        mode = effective_mode(state, self.limits, balance, now)
        self._mode_memo = (state, self.limits, balance, mode) if timeless else None
        return mode

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
            await self._roll_day(now)
            await self._detect_broker_closes(positions, now)
            if not await self._tick_flash_crash(tick, now):
                for pos in positions:
                    if pos.ticket in self.positions:
                        await self._manage(pos, tick, now)
            await self._check_mode_change()
            for expired in self.approvals.expire(self.approval_clock()):
                self._publish(EventKind.APPROVAL_RESOLVED, f"approval {expired.id} expired", approval=expired)

    def _market_minutes(self, now: datetime) -> tuple[float | None, float | None]:
        """`market_minutes`, with the close instants kept for the minute (the market's state only
        changes on a minute; the minutes left are still computed from `now` itself, so exact)."""
        ts = now.timestamp()
        minute = int(ts // 60)
        cached = self._closes
        if cached is None or cached[0] != minute:
            status = market_status(now)
            if status.minutes_to_daily_close is None or status.minutes_to_weekly_close is None:
                cached = (minute, None, None)
            else:
                cached = (minute, ts + status.minutes_to_daily_close * 60, ts + status.minutes_to_weekly_close * 60)
            self._closes = cached
        _, daily_at, weekly_at = cached
        if daily_at is None or weekly_at is None:
            return None, None
        return (daily_at - ts) / 60, (weekly_at - ts) / 60

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
            self._publish(EventKind.EMERGENCY_CLOSE, f"Flash crash {why}: closed {closed} position(s), cooldown",
                          reason=why, closed=closed)

    async def _manage(self, pos: Position, tick: Tick, now: datetime) -> None:
        assert self.state is not None
        self.positions[pos.ticket] = pos
        action, verdict = self.judge(pos, tick.price_to_close(pos.side), pos.profit + pos.swap, now)
        if action.kind is PMKind.CLOSE:
            await self._close(pos, action.name, action.reason, by="position_manager")
            return
        if action.kind is PMKind.MOVE_SL:
            await self._move_sl(pos, action.new_sl, f"{action.name}: {action.reason}")
        if verdict is not None:
            await self._close(pos, verdict.name, verdict.reason, by="exit_rules")
            if verdict.name == "daily_limit":
                self.state = start_cooldown(self.state, self.limits, now, "daily limit close")
                await self._save_state()

    def position_inputs(self, pos: Position) -> PositionInputs:
        """What `judge` reads that only a new analysis, risk state, balance or stop can change (once
        per bar; the same object until then)."""
        assert self.state is not None and self.account is not None
        a, state, balance = self.analysis, self.state, self.account.balance
        key = (a, state, balance, self.params, self.limits, pos.volume, pos.tp, pos.open_price, pos.side)
        cached = self._judge_inputs.get(pos.ticket)
        if cached is None or not all(map(operator.is_, cached[0], key)):
            fixed = position_inputs(pos, a, state, balance, self.params, self.limits, self.spec)
            cached = self._judge_inputs[pos.ticket] = (key, fixed)
        return cached[1]

    def tracker(self, ticket: int) -> PositionTracker:
        tracker = self.trackers.get(ticket)
        if tracker is None:  # not setdefault: a tracker (two deques) built on every step only to be dropped
            tracker = self.trackers[ticket] = PositionTracker(ticket)
        return tracker

    def minutes_to_closes(self, now: datetime) -> tuple[float | None, float | None]:
        return self.market_clock(now) if self.market_clock else self._market_minutes(now)

    def judge(self, pos: Position, price: float, profit: float, now: datetime) -> tuple[PMAction, ExitVerdict | None]:
        """The position manager's action and the exits' verdict for `pos` at `price` (its tracker
        takes the sample; taking it twice at the same moment changes nothing). Pure otherwise: the
        exits read nothing a stop move changes, so both are judged before either is carried out."""
        assert self.account is not None
        balance = self.account.balance
        fixed = self.position_inputs(pos)
        unit, ml_against = fixed.unit, fixed.ml_against
        tracker = self.tracker(pos.ticket)
        tracker.observe(profit, now, ml_against, self.params, unit)
        daily_m, weekly_m = self.minutes_to_closes(now)
        action = manage_position(PMContext(
            position=pos, price=price, profit=profit, peak_profit=tracker.peak_profit, unit=unit, atr=fixed.atr,
            params=self.params, regime_dangerous=fixed.regime_dangerous, ml_against=ml_against, rsi=fixed.rsi,
            closes=fixed.closes, last_bar_range=fixed.last_bar_range, minutes_to_daily_close=daily_m,
            minutes_to_weekly_close=weekly_m,
        ))
        verdict = evaluate_exits(ExitContext(
            position=pos, now=now, profit=profit, unit=unit, balance=balance, params=self.params,
            tracker=tracker, ml_against=ml_against, tp_profit=fixed.tp_profit, daily_loss=fixed.daily_loss,
            daily_limit=fixed.daily_limit, minutes_to_weekly_close=weekly_m,
        ))
        return action, verdict

    async def _move_sl(self, pos: Position, new_sl: float, reason: str) -> None:
        try:
            await self.broker.modify_position(pos.ticket, new_sl, pos.tp)
        except ConnectionLost:
            raise
        except BrokerError as exc:
            log.warning("SL move on %s to %.2f refused: %s", pos.ticket, new_sl, exc)
            return
        now = self.clock()
        self.positions[pos.ticket] = replace(pos, sl=new_sl)
        await self.recorder.record_sl_change(pos.ticket, now, new_sl, pos.tp, reason)
        self._publish(EventKind.SL_MOVED, f"#{pos.ticket} SL → {new_sl:.2f} ({reason})",
                      ticket=pos.ticket, sl=new_sl, old_sl=pos.sl, reason=reason)

    # ------------------------------------------------------------------ closes
    async def _close(self, pos: Position, name: str, reason: str, by: str) -> ClosedTrade | None:
        if pos.ticket in self._closing:
            return None
        self._closing.add(pos.ticket)
        try:
            balance_before = self.account.balance if self.account else 0.0
            try:
                fill = await self.broker.close_position(pos.ticket, comment=name[:24])
            except ConnectionLost:
                raise
            except BrokerError as exc:
                self._publish(EventKind.ORDER_FAILED, f"close #{pos.ticket} failed: {exc}", ticket=pos.ticket,
                              error=str(exc))
                return None
            trade = await self._closed_trade(pos, name, reason, fill.price, fill.time)
            await self._book_close(trade, balance_before, by)
            return trade
        finally:
            self._closing.discard(pos.ticket)

    async def _position_deals(self, pos: Position) -> list[Deal]:
        # a lookback, not the open time: a broker (or a restarted paper market) may date a fill earlier
        since = pos.open_time - DEAL_LOOKBACK
        return [d for d in await self.broker.deals_since(since) if d.position_ticket == pos.ticket]

    async def _closed_trade(self, pos: Position, name: str, reason: str, price: float | None,
                            time: datetime | None) -> ClosedTrade:
        mine = await self._position_deals(pos)
        trade = closed_trade_from_deals(pos, mine, name, reason)
        if trade is not None:
            return trade
        # the broker shows no closing deal (yet): the best estimate is the last price, never 0; it is
        # flagged so the real deal is read again (`_reread_estimates`, and the start-up reconcile)
        if price is None:
            last = self.last_tick.price_to_close(pos.side) if self.last_tick else 0.0
            price = pos.current_price or last or pos.open_price
        entry_costs = sum(d.net for d in mine if d.entry is DealEntry.IN)
        profit = round((price - pos.open_price) * pos.side.sign * self.spec.money_per_price_unit(pos.volume)
                       + entry_costs, 2)
        return ClosedTrade(
            ticket=pos.ticket, symbol=pos.symbol, side=pos.side, volume=pos.volume, open_price=pos.open_price,
            close_price=price, open_time=pos.open_time, close_time=max(time or self.clock(), pos.open_time),
            profit=profit, reason=name, sl=pos.sl, tp=pos.tp,
            extra={"detail": reason, PL_SOURCE: "estimate", "commission": round(entry_costs, 2)},
        )

    async def _book_close(self, trade: ClosedTrade, balance_before: float, by: str) -> None:
        """Count the close in the risk state, store it, then report it (decision 7: any close counts)."""
        assert self.state is not None
        self.positions.pop(trade.ticket, None)
        self.trackers.pop(trade.ticket, None)
        self._judge_inputs.pop(trade.ticket, None)
        if not await self.recorder.record_close(trade):
            return
        if trade.extra.get(PL_SOURCE) == "estimate":
            self._estimated[trade.ticket] = trade
        self.account = await self.broker.account()
        now = self.clock()
        by_hand = trade.reason in HAND_CLOSES
        self.state = record_close(self.state, self.limits, trade.profit, self.account.balance, now, by_hand=by_hand)
        if by_hand:  # the person wanted out: no new entry for the entry cooldown (300 s), as after an entry
            self.state = replace(self.state, last_entry_time=max(now, self.state.last_entry_time or now))
        else:
            self.recent_profits.append(trade.profit)  # the strategy's own results (sizing), not a person's
        await self._save_state()
        self._publish(
            EventKind.TRADE_CLOSED,
            f"closed #{trade.ticket} {trade.side} {trade.volume:g} at {trade.close_price:.2f}: "
            f"${trade.profit:+.2f} ({trade.reason})",
            trade=trade, balance_before=balance_before, balance_after=self.account.balance, by=by,
        )
        await self._check_mode_change()

    async def _detect_broker_closes(self, positions: list[Position], now: datetime) -> None:
        if self._estimated and (self._last_deal_check is None or now - self._last_deal_check >= ESTIMATE_RECHECK
                                or now < self._last_deal_check):
            self._last_deal_check = now
            await self._reread_estimates(now)
        live = {p.ticket for p in positions}
        gone = [p for t, p in self.positions.items() if t not in live and t not in self._closing]
        for pos in gone:
            trade = await self._closed_trade(pos, "broker", "closed at the broker", None, None)
            balance_after = self.account.balance if self.account else 0.0  # fetched after the broker closed it
            await self._book_close(trade, balance_after - trade.profit, by="broker")
        for p in positions:  # positions opened elsewhere with our magic (adopted) get a tracker too
            if p.ticket not in self.positions:
                self.positions[p.ticket] = p
                self.trackers.setdefault(p.ticket, PositionTracker(p.ticket))

    def watch_estimate(self, trade: ClosedTrade) -> None:
        """A close booked at an estimated price (before a restart, say): re-read its deals until they appear."""
        self._estimated[trade.ticket] = trade

    async def _reread_estimates(self, now: datetime) -> None:
        for ticket, booked in list(self._estimated.items()):
            if now - booked.close_time > ESTIMATE_WATCH:
                log.warning("#%s: no closing deal %s after the close; left to the start-up reconcile",
                            ticket, ESTIMATE_WATCH)
                del self._estimated[ticket]
                continue
            pos = Position(ticket=ticket, symbol=booked.symbol, side=booked.side, volume=booked.volume,
                           open_price=booked.open_price, open_time=booked.open_time, sl=booked.sl, tp=booked.tp)
            trade = closed_trade_from_deals(pos, await self._position_deals(pos), booked.reason,
                                            str(booked.extra.get("detail", "")))
            if trade is not None:
                await self.correct_close(trade, booked.profit)

    async def correct_close(self, trade: ClosedTrade, booked_profit: float) -> bool:
        """A close booked at `booked_profit` is really `trade` (its broker deals): store the correction,
        shift today's realised P/L by the difference, tell the user. False when nothing differed."""
        assert self.state is not None
        self._estimated.pop(trade.ticket, None)
        if not await self.recorder.correct_close(trade):
            return False
        delta = round(trade.profit - booked_profit, 2)
        if delta and wib_date(trade.close_time) == self.state.day:
            self.state = replace(self.state, daily_realized=round(self.state.daily_realized + delta, 2))
        for i in range(len(self.recent_profits) - 1, -1, -1):
            if self.recent_profits[i] == booked_profit:
                self.recent_profits[i] = trade.profit
                break
        self.account = await self.broker.account()
        await self._save_state()
        self._publish(EventKind.INFO, f"#{trade.ticket} P/L corrected from the broker's deals: "
                      f"${booked_profit:+.2f} → ${trade.profit:+.2f}", trade=trade, booked=booked_profit)
        await self._check_mode_change()
        return True

    async def book_close_from_deals(self, trade: ClosedTrade) -> None:
        """A close the broker has and the journal lacks (opened and closed while the bot was down)."""
        balance = self.account.balance if self.account else 0.0
        await self._book_close(trade, balance - trade.profit, by="broker")

    async def _check_mode_change(self) -> None:
        new = self.mode()
        if new.mode is not self._mode.mode:
            old, self._mode = self._mode, new
            kind = EventKind.LIMIT_HIT if new.mode is RiskMode.STOPPED else EventKind.RISK_MODE_CHANGED
            self._publish(kind, f"risk mode {old.mode} → {new.mode}: {new.reason}", old=str(old.mode),
                          new=str(new.mode), reason=new.reason)
        assert self.state is not None
        if self.state.total_stop and not self._proposed_reset:
            self._proposed_reset = True
            change = RiskChange("reset_total", "reset the total-loss reference and resume trading", {})
            approval = self.approvals.create(change, "engine", new.reason, self.approval_clock())
            self._publish(EventKind.RISK_CHANGE_PROPOSED, f"proposal: {change.summary}", approval=approval)

    # ------------------------------------------------------------------ per bar
    async def on_bar(self, bars: pl.DataFrame) -> Decision:
        assert self.state is not None, "call start() first"
        async with self._step_lock:
            return await self._on_bar(bars)

    async def _on_bar(self, bars: pl.DataFrame) -> Decision:
        with self.timer.phase("analysis"):
            analysis = self.analyzer(bars)
        self.analysis = analysis
        now = self.clock()
        with self.timer.phase("entry"):
            bar_move = close_move_pct(analysis.recent_closes, self.params.flash_crash_bars)
            if bar_move >= self.params.flash_crash_pct and self.params.gate_enabled("flash_crash_guard"):
                await self._flash_crash(f"{bar_move:.2f}% over the last {self.params.flash_crash_bars} bars", now)
            decision = await self._decide(analysis, now)
        return decision

    def _size(self, analysis: MarketAnalysis, mode: RiskMode, balance: float, free_margin: float) -> LotSize | None:
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
            balance=balance, free_margin=free_margin, price=setup.entry,
            stop_distance=stop_distance, spec=self.spec, limits=self.limits, mode=mode,
            kelly=kelly_estimate(list(self.recent_profits), prior_payoff=max(setup.risk_reward, 1.0)),
            regime_multiplier=analysis.regime.lot_multiplier, session_multiplier=session_mult,
            leverage=self.account.leverage if self.account else 100,
        )

    async def _decide(self, analysis: MarketAnalysis, now: datetime) -> Decision:
        assert self.state is not None
        account = self.account = await self.broker.account()
        mode = self.mode()
        ctx = EntryContext(
            now=now, analysis=analysis, params=self.params, mode=mode, paused=self.paused,
            open_positions=len(self.positions), max_positions=self.limits.max_positions,
            last_entry_time=self.state.last_entry_time, lot=None,
            confidence_threshold=analysis.quality.threshold, tick_move_pct=self.tick_move_pct(),
            news=self.news(now) if self.news else None,
        )
        full = self.full_decisions
        lot, gates = self._gates(ctx, account, full)
        block = first_block(gates)
        setup = analysis.setup
        seen: dict[str, Any] = dict(
            bar_time=analysis.bar_time, action="skip" if block else "enter",
            side=setup.side if setup else None,
            reason=f"{block.name}: {block.reason}" if block else (setup.reason if setup else ""),
            gates=gates, regime=analysis.regime.name, p_up=analysis.ml.p_up if analysis.ml else None,
            threshold=analysis.quality.threshold, setup_reason=setup.reason if setup else "",
            lot=lot.lots if lot else 0.0, lot_steps=lot.steps if lot else (), model_version=analysis.model_version,
            features=decision_features(analysis) if full or block is None else {},
        )
        # built twice rather than `replace`d with its id: half the cost, once a bar
        decision = Decision(**seen, id=await self.recorder.record_decision(Decision(**seen)))
        self.last_decision = decision
        if block is None and setup is not None and lot is not None:
            decision = await self._enter(decision, analysis, lot, now)
        return decision

    def _gates(self, ctx: EntryContext, account: AccountInfo, full: bool) -> tuple[LotSize | None, tuple[GateResult, ...]]:
        """The lot and the gates' verdicts. A recorder that keeps no decisions (a backtest's) needs only
        the verdict: the gates up to the first block, and no sizing when a gate before the lot's blocks."""
        if full:
            lot = self._size(ctx.analysis, ctx.mode.mode, account.balance, account.free_margin)
            return lot, evaluate_gates(replace(ctx, lot=lot))
        head = evaluate_gates(ctx, until_block=True, names=_LOT_FREE_GATES)
        if first_block(head) is not None:
            return None, head
        lot = self._size(ctx.analysis, ctx.mode.mode, account.balance, account.free_margin)
        return lot, head + evaluate_gates(replace(ctx, lot=lot), until_block=True, names=_LOT_GATES)

    def _stops_for(self, side_sign: int, price: float, sl: float, tp: float, lots: float, balance: float) -> tuple[float, float]:
        """Min SL distance and the emergency cap at `emergency_sl_pct` of balance (decision 7)."""
        p = self.params
        dist = (price - sl) * side_sign
        if dist < p.min_sl_distance:
            dist = 2 * p.min_sl_distance
        money_per_unit = self.spec.money_per_price_unit(lots)
        cap = balance * p.emergency_sl_pct / 100 / money_per_unit if money_per_unit > 0 else dist
        dist = min(dist, cap)
        return self.spec.round_price(price - side_sign * dist), self.spec.round_price(tp)

    async def _enter(self, decision: Decision, analysis: MarketAnalysis, lot: LotSize, now: datetime) -> Decision:
        """Send the order; the decision comes back marked `order_failed` when the broker refuses it."""
        assert self.state is not None and self.account is not None and analysis.setup is not None
        setup = analysis.setup
        tick = await self.broker.tick()
        price = tick.price_to_open(setup.side)
        sl, tp = self._stops_for(setup.side.sign, price, setup.stop_loss, setup.take_profit, lot.lots,
                                 self.account.balance)
        try:
            fill = await self.broker.open_market(setup.side, lot.lots, sl, tp, comment=self.comment)
        except ConnectionLost:
            raise
        except BrokerError as exc:
            failed = replace(decision, action="order_failed", reason=f"broker refused the order: {exc}")
            await self.recorder.record_order_failed(failed)
            self.last_decision = failed
            self._publish(EventKind.ORDER_FAILED, f"{setup.side} {lot.lots:g} refused: {exc}", error=str(exc),
                          decision=failed)
            return failed
        placed_sl = sl if fill.sl is None else fill.sl  # the broker may have moved a refused stop
        placed_tp = tp if fill.tp is None else fill.tp
        refusal = moved_stop_refusal(side_sign=setup.side.sign, price=fill.price, planned_sl=sl, placed_sl=placed_sl,
                                     planned_lots=lot.lots, placed_lots=fill.volume, spec=self.spec)
        sl, tp = placed_sl, placed_tp
        trade = OpenedTrade(
            ticket=fill.ticket, side=setup.side, volume=fill.volume, open_price=fill.price, open_time=fill.time,
            sl=sl, tp=tp, magic=self.broker.magic, comment=self.comment, decision_id=decision.id,
            requested_price=price, risk_money=lot.risk_money,
            extra={"setup": setup.reason, "regime": analysis.regime.name, "session": analysis.session.name},
        )
        await self.recorder.record_open(trade)
        self.state = replace(self.state, last_entry_time=now)
        self.positions[fill.ticket] = Position(
            ticket=fill.ticket, symbol=self.spec.name, side=setup.side, volume=fill.volume, open_price=fill.price,
            open_time=fill.time, sl=sl, tp=tp, magic=self.broker.magic, comment=self.comment,
        )
        self.trackers[fill.ticket] = PositionTracker(fill.ticket)
        await self._save_state()
        self._publish(EventKind.TRADE_OPENED, f"opened #{fill.ticket} {setup.side} {fill.volume:g} at {fill.price:.2f} "
                      f"SL {sl:.2f} TP {tp:.2f}", trade=trade, decision=decision)
        if refusal is not None:  # booked as opened, then closed at once: the journal keeps both fills
            await self._close(self.positions[fill.ticket], "stop_moved", refusal, by="engine")
        return decision

    # ------------------------------------------------------------------ commands
    async def pause(self, by: str) -> ChangeResult:
        if self.paused:
            return ChangeResult(False, f"already paused by {self.paused_by}")
        self.paused, self.paused_by = True, by
        await self._save_state()
        self._publish(EventKind.PAUSED, f"paused by {by}", by=by)
        return ChangeResult(True, "paused: no new entries; open positions are still managed")

    async def resume(self, by: str) -> ChangeResult:
        mode = self.mode()
        if mode.mode is RiskMode.STOPPED:
            assert self.state is not None
            kind = "reset_total" if self.state.total_stop else "resume_stopped"
            return await self.request_risk_change(RiskChange(kind, f"leave STOPPED ({mode.reason})", {}), by)
        if not self.paused:
            return ChangeResult(False, "not paused")
        self.paused, self.paused_by = False, ""
        await self._save_state()
        self._publish(EventKind.RESUMED, f"resumed by {by}", by=by)
        return ChangeResult(True, "resumed")

    async def close(self, ticket: int, by: str) -> ClosedTrade | None:
        pos = self.positions.get(ticket)
        if pos is None:
            raise KeyError(f"no open position #{ticket}")
        return await self._close(pos, "manual", f"closed by {by}", by=by)

    async def close_all(self, by: str, reason: str = "close all") -> int:
        closed = 0
        for pos in list(self.positions.values()):
            if await self._close(pos, "close_all" if by != "flash_crash_guard" else "flash_crash", reason, by=by):
                closed += 1
        return closed

    def is_loosening(self, change: RiskChange) -> bool:
        assert self.state is not None
        if change.kind == "mode":
            return RiskMode(change.params["mode"]).safety < self.state.manual_floor.safety
        if change.kind == "limits":
            return bool(replace(self.limits, **change.params).riskier_than(self.limits))
        return change.kind in ("resume_stopped", "reset_total")

    async def request_risk_change(self, change: RiskChange, by: str) -> ChangeResult:
        """Tightening applies at once; loosening returns a pending approval. Bad values raise ValueError."""
        if change.kind == "mode":
            RiskMode(str(change.params.get("mode", "")).upper())  # raises ValueError on a bad name
            change = RiskChange("mode", change.summary, {"mode": str(change.params["mode"]).upper()})
        elif change.kind == "limits":
            try:
                replace(self.limits, **change.params)  # validates the values
            except TypeError as exc:  # an unknown field or a value of the wrong type
                raise ValueError(f"bad limits change {change.params!r}: {exc}") from exc
        elif change.kind not in ("resume_stopped", "reset_total"):
            raise ValueError(f"unknown change kind {change.kind!r}")
        if self.is_loosening(change):
            approval = self.approvals.create(change, by, f"requested by {by}", self.approval_clock())
            self._publish(EventKind.RISK_CHANGE_PROPOSED, f"approval needed: {change.summary}", approval=approval)
            return ChangeResult(False, f"needs approval: {change.summary}", approval)
        await self._apply(change, by)
        return ChangeResult(True, f"applied: {change.summary}")

    async def resolve_approval(self, approval_id: str, approve: bool, by: str) -> Approval:
        """Raises ApprovalError when unknown, already answered or expired (a second tap does nothing)."""
        approval = self.approvals.resolve(approval_id, approve, by, self.approval_clock())
        if approval.status is ApprovalStatus.APPROVED:
            await self._apply(approval.change, by)
        self._publish(EventKind.APPROVAL_RESOLVED, f"{approval.change.summary}: {approval.status.value} by {by}",
                      approval=approval)
        return approval

    async def _apply(self, change: RiskChange, by: str) -> None:
        assert self.state is not None and self.account is not None
        now = self.clock()
        if change.kind == "mode":
            self.state = replace(self.state, manual_floor=RiskMode(change.params["mode"]))
        elif change.kind == "limits":
            self.limits = replace(self.limits, **change.params)
        elif change.kind == "resume_stopped":
            # override only a daily stop that holds now: an approval answered after the WIB day rolled
            # must not switch off the new day's limit; a STOPPED floor the user set is lifted too
            state = self.state
            if state.daily_stop or limit_use(state, self.limits, self.account.balance).daily_fraction >= 1:
                state = replace(state, stop_override_day=wib_date(now))
            if state.manual_floor is RiskMode.STOPPED:
                state = replace(state, manual_floor=RiskMode.NORMAL)
            self.state = state
        elif change.kind == "reset_total":
            self.state = approved_reset(self.state, self.account.balance, now)
            if self.state.manual_floor is RiskMode.STOPPED:
                self.state = replace(self.state, manual_floor=RiskMode.NORMAL)
            self._proposed_reset = False
        else:
            raise ApprovalError(f"unknown change kind {change.kind!r}")
        await self._save_state()
        self._publish(EventKind.RISK_CHANGE_APPLIED, f"{change.summary} (by {by})", change=change, by=by)
        await self._check_mode_change()


def _position_to_dict(p: Position) -> dict[str, Any]:
    return {"ticket": p.ticket, "symbol": p.symbol, "side": str(p.side), "volume": p.volume,
            "open_price": p.open_price, "open_time": p.open_time.isoformat(), "sl": p.sl, "tp": p.tp,
            "magic": p.magic, "comment": p.comment}


def _position_from_dict(d: dict[str, Any]) -> Position:
    return Position(ticket=int(d["ticket"]), symbol=str(d["symbol"]), side=Side(d["side"]), volume=float(d["volume"]),
                    open_price=float(d["open_price"]), open_time=datetime.fromisoformat(d["open_time"]),
                    sl=float(d.get("sl", 0.0)), tp=float(d.get("tp", 0.0)), magic=int(d.get("magic", 0)),
                    comment=str(d.get("comment", "")))


__all__ = ["ChangeResult", "EngineSnapshot", "GateResult", "TradingEngine"]

