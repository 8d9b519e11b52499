"""TradingEngine end to end against a real PaperBroker (no feed; prices by set_tick), a MemoryRecorder,
hand-made analysis records and an injected clock.

Numbers used throughout: balance 10,000; BUY setup entry 3300 / SL 3290 / TP 3320 (fixture); ATR 5;
half-Kelly with the neutral prior gives 12.5 % capped at 1 % -> 0.1 lot capped at the band's 0.02.
At 0.02 lot one price unit is $2, one ATR money unit is $10.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.engine_fixtures import NOW, FakeSession, FakeSetup, analysis
from trading.analysis import MarketAnalysis, MLView
from trading.broker.paper import PaperBroker
from trading.domain import Deal, Side, Tick
from trading.engine import TradingEngine
from trading.events import Event, EventBus, EventKind
from trading.parameters import GATE_NAMES, OPTIONAL_GATES_OFF_BY_DEFAULT, StrategyParams
from trading.records import MemoryRecorder
from trading.risk.approvals import ApprovalError, ApprovalStatus, RiskChange
from trading.risk.modes import RiskLimits, RiskMode, RiskState, risk_state_to_dict


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


class StubAnalyzer:
    """Returns whatever analysis the test set; counts calls."""

    def __init__(self, a: MarketAnalysis | None = None) -> None:
        self.next = a or analysis()
        self.calls = 0

    def __call__(self, bars: object) -> MarketAnalysis:
        self.calls += 1
        return self.next


class Harness:
    def __init__(
        self,
        engine: TradingEngine,
        broker: PaperBroker,
        clock: Clock,
        analyzer: StubAnalyzer,
        recorder: MemoryRecorder,
        events: list[Event],
    ) -> None:
        self.engine, self.broker, self.clock = engine, broker, clock
        self.analyzer, self.recorder, self.events = analyzer, recorder, events

    def price(self, bid: float, spread: float = 0.2, seconds: float = 1.0) -> list[Deal]:
        """Advance the clock and give the broker a new price (the broker checks its SL/TP here)."""
        t = self.clock.advance(seconds=seconds)
        return self.broker.set_tick(Tick(t, bid, round(bid + spread, 2)))

    async def tick(self, bid: float, seconds: float = 1.0) -> None:
        self.price(bid, seconds=seconds)
        await self.engine.on_tick()

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    def of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind is kind]

    async def open_buy(self, **setup: float) -> int:
        """One on_bar that must enter; returns the ticket. Moves the clock past the entry cooldown."""
        self.clock.advance(minutes=15)
        self.price(3299.8, seconds=0)
        s = replace(FakeSetup(), **setup)
        self.analyzer.next = analysis(setup=s, bar_time=self.clock.now - timedelta(minutes=15))
        decision = await self.engine.on_bar(None)  # type: ignore[arg-type]
        assert decision.action == "enter", decision.reason
        return self.recorder.opened[-1].ticket


# the broker stop capped at 2 % of balance (the default 0.5 % puts it where the max-loss exit closes)
WIDE_CAP = StrategyParams(emergency_sl_pct=2.0)


async def make(
    params: StrategyParams | None = None,
    limits: RiskLimits | None = None,
    balance: float = 10_000.0,
    recorder: MemoryRecorder | None = None,
    saved: dict | None = None,
    before_start=None,
    commission_per_lot: float = 0.0,
) -> Harness:
    clock = Clock(NOW)
    broker = PaperBroker(balance=balance, commission_per_lot=commission_per_lot)
    await broker.connect()
    broker.set_tick(Tick(NOW, 3299.8, 3300.0))
    if before_start is not None:
        await before_start(broker)
    bus = EventBus()
    events: list[Event] = []
    bus.on(events.append)
    rec = recorder or MemoryRecorder()
    stub = StubAnalyzer()
    engine = TradingEngine(
        broker,
        stub,
        params=params,
        limits=limits,
        recorder=rec,
        bus=bus,
        clock=clock,
        market_clock=lambda now: (None, None),
    )
    await engine.start(saved)
    return Harness(engine, broker, clock, stub, rec, events)


# ---------------------------------------------------------------------------------------- start


async def test_start_creates_risk_state_from_the_live_balance() -> None:
    h = await make(balance=7_500.0)
    s = h.engine.state
    assert s is not None
    assert s.day_start_balance == 7_500.0 and s.reference_balance == 7_500.0
    assert s.day.isoformat() == "2026-03-10"  # 17:00 WIB
    assert h.engine.mode().mode is RiskMode.NORMAL
    assert h.recorder.state["risk"]["day_start_balance"] == 7_500.0  # saved at start


async def test_start_adopts_open_positions_and_manages_them() -> None:
    async def pre(broker: PaperBroker) -> None:
        await broker.open_market(Side.BUY, 0.02, 3290.0, 3320.0, comment="before restart")

    h = await make(before_start=pre)
    assert list(h.engine.positions) == [1]
    assert 1 in h.engine.trackers
    h.engine.analysis = analysis()  # ATR 5: breakeven at +10
    await h.tick(3310.0)
    assert h.broker.positions_now()[0].sl == 3302.5  # adopted position got breakeven at the broker


async def test_start_rolls_a_saved_state_from_an_earlier_wib_day() -> None:
    old = RiskState(
        day=NOW.date() - timedelta(days=1),
        day_start_balance=10_400.0,
        reference_balance=11_000.0,
        daily_realized=-400.0,
        daily_trades=3,
        consecutive_losses=3,
        daily_stop=True,
    )
    h = await make(saved={"risk": risk_state_to_dict(old), "paused": True, "paused_by": "op"})
    s = h.engine.state
    assert s.day == NOW.date() and not s.daily_stop and s.daily_realized == 0 and s.consecutive_losses == 0
    assert s.day_start_balance == 10_000.0  # the live balance, not the saved one
    assert s.reference_balance == 11_000.0  # the total-loss reference persists
    assert h.engine.paused and h.engine.paused_by == "op"


async def test_restart_from_state_dict_keeps_counters() -> None:
    h = await make()
    t = await h.open_buy()
    await h.tick(3289.0)  # broker SL
    saved = h.engine.state_dict()
    h2 = await make(saved=saved)
    assert h2.engine.state.consecutive_losses == 1
    assert h2.engine.state.daily_realized == pytest.approx(-22.0)
    assert list(h2.engine.recent_profits) == [pytest.approx(-22.0)]
    assert t not in h2.engine.positions


async def test_a_broker_close_while_the_bot_was_down_is_counted_after_restart() -> None:
    h = await make()
    t1 = await h.open_buy()
    t2 = await h.open_buy(stop_loss=3280.0)
    saved = dict(h.recorder.state)  # what the journal holds when the bot dies
    assert [p["ticket"] for p in saved["positions"]] == [t1, t2]
    h.price(3285.0)  # t1's 3290 stop is hit at the broker while nobody is watching
    assert [p.ticket for p in h.broker.positions_now()] == [t2]
    rec = MemoryRecorder()
    engine = TradingEngine(
        h.broker, h.analyzer, recorder=rec, clock=h.clock, market_clock=lambda now: (None, None)
    )
    await engine.start(saved)
    [trade] = rec.closed
    assert trade.ticket == t1 and trade.reason == "broker_sl" and trade.profit == pytest.approx(-30.0)
    assert engine.state.consecutive_losses == 1 and engine.state.daily_realized == pytest.approx(-30.0)
    assert list(engine.positions) == [t2]
    assert [p["ticket"] for p in rec.state["positions"]] == [t2]
    again = TradingEngine(
        h.broker, h.analyzer, recorder=rec, clock=h.clock, market_clock=lambda now: (None, None)
    )
    await again.start(dict(rec.state))  # another restart: the close is not counted twice
    assert len(rec.closed) == 1 and again.state.daily_trades == 1
    stale = TradingEngine(
        h.broker, h.analyzer, recorder=rec, clock=h.clock, market_clock=lambda now: (None, None)
    )
    await stale.start(saved)  # an old state, but the journal already has the close: not recorded again
    assert len(rec.closed) == 1


# ---------------------------------------------------------------------------------------- entries


class OrderCheckingRecorder(MemoryRecorder):
    """Fails the test if the bus saw TRADE_OPENED before the decision / the open were recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Event] = []
        self.violations: list[str] = []

    async def record_decision(self, decision):  # type: ignore[no-untyped-def]
        if any(e.kind is EventKind.TRADE_OPENED for e in self.seen):
            self.violations.append("decision recorded after TRADE_OPENED")
        return await super().record_decision(decision)

    async def record_open(self, trade):  # type: ignore[no-untyped-def]
        if any(e.kind is EventKind.TRADE_OPENED for e in self.seen):
            self.violations.append("open recorded after TRADE_OPENED")
        await super().record_open(trade)


async def test_on_bar_with_all_gates_passing_opens_with_stops_at_the_broker() -> None:
    rec = OrderCheckingRecorder()
    h = await make(recorder=rec)
    h.engine.bus.on(rec.seen.append)
    decision = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert decision.action == "enter" and decision.side is Side.BUY
    assert [g.name for g in decision.gates] == list(GATE_NAMES)
    assert decision.blocked_by is None
    assert h.engine.last_decision == decision and decision.id == 1
    assert h.analyzer.calls == 1
    [pos] = h.broker.positions_now()
    assert (pos.side, pos.volume, pos.open_price, pos.sl, pos.tp) == (Side.BUY, 0.02, 3300.0, 3290.0, 3320.0)
    assert rec.violations == []
    assert rec.decisions == [decision] and rec.opened[0].decision_id == decision.id
    [opened] = h.of(EventKind.TRADE_OPENED)
    assert opened.data["trade"].ticket == pos.ticket
    assert h.engine.state.last_entry_time == NOW
    assert pos.ticket in h.engine.positions


async def test_decision_is_recorded_before_the_event_even_when_nothing_opens() -> None:
    rec = OrderCheckingRecorder()
    h = await make(recorder=rec)
    h.analyzer.next = analysis(setup=None)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.action == "skip" and d.blocked_by == "smc_setup"
    assert rec.decisions == [d] and h.broker.positions_now() == []
    skipped = {g.name for g in d.gates if g.skipped}
    assert {"ml_confidence", "ml_agreement", "confirmation", "pullback", "lot_size"} <= skipped


async def test_sl_never_risks_more_than_the_emergency_percentage_of_balance() -> None:
    # setup stop 40 away; emergency 0.5 % of 10,000 = $50 = 25 price units at 0.02 lot
    h = await make(params=StrategyParams(emergency_sl_pct=0.5))
    h.analyzer.next = analysis(setup=FakeSetup(stop_loss=3260.0, take_profit=3380.0))
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.action == "enter"
    [pos] = h.broker.positions_now()
    assert pos.volume == 0.02
    assert pos.sl == 3275.0
    assert (pos.open_price - pos.sl) * 100 * pos.volume == pytest.approx(50.0)


async def test_default_emergency_cap_does_not_touch_a_normal_stop() -> None:
    h = await make()
    await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert h.broker.positions_now()[0].sl == 3290.0


async def test_min_sl_distance_pushes_a_too_close_stop_to_two_dollars() -> None:
    h = await make()
    h.analyzer.next = analysis(setup=FakeSetup(stop_loss=3299.5))
    await h.engine.on_bar(None)  # type: ignore[arg-type]
    [pos] = h.broker.positions_now()
    assert pos.sl == 3298.0  # 2.00 below the 3300.00 ask


async def test_a_pushed_stop_is_sized_at_its_real_distance() -> None:
    # a band that allows big lots: 1 % of 10,000 over the 2.00 the stop really gets = 0.5 lot, not 2 lots
    h = await make(params=WIDE_CAP, limits=RiskLimits(max_lot=5.0))
    h.analyzer.next = analysis(setup=FakeSetup(stop_loss=3299.5))
    await h.engine.on_bar(None)  # type: ignore[arg-type]
    [pos] = h.broker.positions_now()
    assert pos.sl == 3298.0 and pos.volume == 0.5
    risk = (pos.open_price - pos.sl) * 100 * pos.volume
    assert risk == pytest.approx(100.0) and h.recorder.opened[0].risk_money == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("overrides", "gate"),
    [
        ({"session": FakeSession(allowed=False, reason="Tokyo-London overlap")}, "session"),
        ({"spread_points": 90}, "spread_limit"),
        ({"prev_setup_side": None}, "confirmation"),
    ],
)
async def test_a_blocked_gate_means_no_order(overrides: dict, gate: str) -> None:
    h = await make()
    h.analyzer.next = analysis(**overrides)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.action == "skip" and d.blocked_by == gate and d.reason.startswith(gate)
    assert h.broker.positions_now() == [] and h.recorder.opened == []
    assert EventKind.TRADE_OPENED not in h.kinds()
    assert [g.name for g in h.engine.last_decision.gates] == list(GATE_NAMES)


async def test_cooldown_and_position_limit_after_entries() -> None:
    h = await make()
    await h.engine.on_bar(None)  # type: ignore[arg-type]
    h.clock.advance(seconds=299)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "cooldown"
    await h.open_buy()
    assert len(h.broker.positions_now()) == 2
    h.clock.advance(minutes=15)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "position_limit"
    assert len(h.broker.positions_now()) == 2


# ---------------------------------------------------------------------------------------- per tick


TRAIL = StrategyParams(tp_hard_atr=100.0, trail_start_atr=3.0, trail_step_atr=1.0)


async def test_breakeven_then_trailing_move_the_stop_at_the_broker() -> None:
    h = await make(params=TRAIL)
    ticket = await h.open_buy()
    await h.tick(3305.0)  # +5 = 1 ATR: nothing yet
    assert h.broker.positions_now()[0].sl == 3290.0 and h.recorder.sl_changes == []
    await h.tick(3310.0)  # +10 = 2 ATR: breakeven at entry + 0.5 ATR
    assert h.broker.positions_now()[0].sl == 3302.5
    await h.tick(3311.0)  # no improvement -> no modify
    assert len(h.recorder.sl_changes) == 1
    await h.tick(3315.0)  # +15 = 3 ATR: trail 1 ATR behind the bid
    assert h.broker.positions_now()[0].sl == 3310.0
    assert [(c[0], c[2]) for c in h.recorder.sl_changes] == [(ticket, 3302.5), (ticket, 3310.0)]
    assert "breakeven" in h.recorder.sl_changes[0][4] and "trailing_stop" in h.recorder.sl_changes[1][4]
    assert [e.data["sl"] for e in h.of(EventKind.SL_MOVED)] == [3302.5, 3310.0]
    assert h.engine.positions[ticket].sl == 3310.0
    # the trailed stop is hit at the broker: a win, counted
    await h.tick(3309.0)
    assert h.broker.positions_now() == []
    [closed] = h.recorder.closed
    assert closed.reason == "broker_sl" and closed.close_price == 3309.0
    assert closed.profit == pytest.approx(18.0)
    assert h.engine.state.consecutive_losses == 0 and h.engine.state.daily_wins == 1


async def test_sell_side_stops_breakeven_trailing_and_broker_sl() -> None:
    h = await make(params=TRAIL)
    sell = FakeSetup(side=Side.SELL, entry=3299.8, stop_loss=3309.8, take_profit=3279.8)
    h.analyzer.next = analysis(
        setup=sell,
        prev_setup_side=Side.SELL,
        indicators={"rsi_14": 45.0},
        ml=MLView(0.3),
        recent_closes=(3300.5, 3301.0, 3300.5, 3300.0, 3299.9),
    )
    assert (await h.engine.on_bar(None)).action == "enter"  # type: ignore[arg-type]
    [pos] = h.broker.positions_now()
    assert (pos.side, pos.open_price, pos.sl, pos.tp) == (Side.SELL, 3299.8, 3309.8, 3279.8)
    await h.tick(3289.6)  # ask 3289.8: 10 in favour -> breakeven 0.5 ATR below the entry
    assert h.broker.positions_now()[0].sl == 3297.3
    await h.tick(3284.6)  # ask 3284.8: 15 in favour -> trail 1 ATR above the ask
    assert h.broker.positions_now()[0].sl == 3289.8
    await h.tick(3290.0)  # ask 3290.2 reaches the trailed stop at the broker
    [trade] = h.recorder.closed
    assert trade.reason == "broker_sl" and trade.close_price == 3290.2
    assert trade.profit == pytest.approx((3299.8 - 3290.2) * 2)


async def test_disabled_flash_crash_gate_does_not_close_on_ticks() -> None:
    off = OPTIONAL_GATES_OFF_BY_DEFAULT | {"flash_crash_guard"}
    h = await make(params=replace(TRAIL, disabled_gates=off))
    await h.open_buy(take_profit=3500.0)
    await h.tick(3300.0)
    await h.tick(3390.0, seconds=30)
    assert h.of(EventKind.EMERGENCY_CLOSE) == [] and len(h.broker.positions_now()) == 1
    assert h.engine.mode().mode is RiskMode.NORMAL


async def test_on_tick_does_not_recompute_the_analysis() -> None:
    h = await make()
    await h.open_buy()
    calls = h.analyzer.calls
    for i in range(5):
        await h.tick(3300.0 + i)
    assert h.analyzer.calls == calls


async def test_broker_sl_hit_is_detected_and_counted() -> None:
    h = await make()
    ticket = await h.open_buy()
    deals = h.price(3289.0)  # through the 3290 stop: the broker closes at the tick price
    assert len(deals) == 1 and h.broker.positions_now() == []
    assert ticket in h.engine.positions  # not seen yet
    await h.engine.on_tick()
    [trade] = h.recorder.closed
    assert trade.ticket == ticket and trade.reason == "broker_sl"
    assert trade.profit == pytest.approx(-22.0)  # (3289 - 3300) x 2
    s = h.engine.state
    assert s.daily_realized == pytest.approx(-22.0) and s.consecutive_losses == 1 and s.daily_trades == 1
    assert ticket not in h.engine.positions
    [ev] = h.of(EventKind.TRADE_CLOSED)
    assert ev.data["by"] == "broker" and ev.data["balance_after"] == pytest.approx(9_978.0)
    await h.engine.on_tick()  # a second look does not count it twice
    assert len(h.recorder.closed) == 1 and h.engine.state.daily_trades == 1


async def test_broker_tp_hit_is_counted_as_a_win() -> None:
    h = await make()
    await h.open_buy()
    await h.tick(3321.0)
    [trade] = h.recorder.closed
    assert trade.reason == "broker_tp" and trade.profit == pytest.approx(42.0)
    assert h.engine.state.daily_wins == 1


async def test_three_losses_switch_to_recovery_min_lot_one_position() -> None:
    h = await make()
    for _ in range(3):
        await h.open_buy()
        await h.tick(3289.0)
    assert h.engine.state.consecutive_losses == 3
    mode = h.engine.mode()
    assert mode.mode is RiskMode.RECOVERY and "3 losses" in mode.reason
    assert any(e.data.get("new") == "RECOVERY" for e in h.of(EventKind.RISK_MODE_CHANGED))
    await h.open_buy()
    assert h.broker.positions_now()[0].volume == 0.01
    assert any("RECOVERY" in step for step in h.engine.last_decision.lot_steps)
    h.clock.advance(minutes=15)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "position_limit" and "limit 1" in d.reason
    # a win ends the streak
    await h.tick(3321.0)
    assert h.engine.state.consecutive_losses == 0
    assert h.engine.mode().mode is RiskMode.NORMAL


async def test_daily_limit_stops_until_the_next_wib_day() -> None:
    h = await make(params=WIDE_CAP, limits=RiskLimits(daily_loss_pct=0.5))  # $50
    await h.open_buy(stop_loss=3270.0, take_profit=3360.0)
    await h.tick(3274.0)  # through no stop yet; max_loss = $50 -> the exit rule closes first
    assert h.recorder.closed[-1].reason == "max_loss"
    s = h.engine.state
    assert s.daily_stop
    mode = h.engine.mode()
    assert mode.mode is RiskMode.STOPPED and "daily loss" in mode.reason
    [hit] = h.of(EventKind.LIMIT_HIT)
    assert hit.data["new"] == "STOPPED"
    h.clock.advance(minutes=15)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "risk_mode" and h.broker.positions_now() == []
    # 16:59 UTC is 23:59 WIB: still stopped; 17:00 UTC is 00:00 WIB the next day
    h.clock.now = datetime(2026, 3, 10, 16, 59, tzinfo=NOW.tzinfo)
    await h.tick(3280.0, seconds=0)
    assert h.engine.mode().mode is RiskMode.STOPPED
    h.clock.now = datetime(2026, 3, 10, 17, 0, tzinfo=NOW.tzinfo)
    await h.tick(3280.0, seconds=0)
    assert h.engine.state.day.isoformat() == "2026-03-11"
    assert h.engine.mode().mode is RiskMode.NORMAL
    assert h.engine.state.day_start_balance == pytest.approx(h.broker.balance)
    assert not h.engine.approvals.pending(h.clock.now)  # a daily stop needs no reset


async def test_daily_limit_exit_closes_and_starts_a_cooldown() -> None:
    h = await make(limits=RiskLimits(daily_loss_pct=0.3))  # $30
    await h.open_buy(stop_loss=3270.0, take_profit=3360.0)
    await h.tick(3286.0)  # -$28: holds
    assert h.recorder.closed == []
    await h.tick(3284.0)  # -$32: today's loss would pass the limit
    [trade] = h.recorder.closed
    assert trade.reason == "daily_limit"
    s = h.engine.state
    assert s.daily_stop and s.cooldown_until == h.clock.now + timedelta(minutes=60)
    assert s.cooldown_reason == "daily limit close"
    assert h.engine.mode().mode is RiskMode.STOPPED  # STOPPED outranks the cooldown


async def test_eighty_percent_of_the_daily_limit_is_protected_mode() -> None:
    h = await make(limits=RiskLimits(daily_loss_pct=0.25))  # $25
    await h.open_buy()
    await h.tick(3289.0)  # -$22 = 88 %
    mode = h.engine.mode()
    assert mode.mode is RiskMode.PROTECTED and "88% of the daily" in mode.reason
    await h.open_buy()
    assert h.broker.positions_now()[0].volume == 0.01
    h.clock.advance(minutes=15)
    assert (await h.engine.on_bar(None)).blocked_by == "position_limit"  # type: ignore[arg-type]


async def test_a_refused_order_is_reported_and_not_counted_as_an_entry() -> None:
    h = await make()
    h.price(3321.0, seconds=0)  # the ask is already above the setup's 3320 TP: the broker refuses it
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.action == "order_failed" and "broker refused" in d.reason  # the gates passed; the order did not
    assert h.recorder.decisions[-1].action == "order_failed" and h.engine.last_decision == d
    assert h.broker.positions_now() == [] and h.recorder.opened == []
    [ev] = h.of(EventKind.ORDER_FAILED)
    assert "take profit" in ev.data["error"]
    assert h.engine.state.last_entry_time is None and h.engine.positions == {}


async def test_total_limit_stops_and_the_engine_proposes_a_reset() -> None:
    h = await make(limits=RiskLimits(total_loss_pct=0.2))  # $20
    await h.open_buy()
    await h.tick(3289.0)  # -$22 at the broker SL
    assert h.engine.state.total_stop
    mode = h.engine.mode()
    assert mode.mode is RiskMode.STOPPED and "total loss" in mode.reason
    [proposal] = h.of(EventKind.RISK_CHANGE_PROPOSED)
    approval = proposal.data["approval"]
    assert approval.change.kind == "reset_total" and approval.requested_by == "engine"
    assert h.engine.approvals.pending(h.clock.now) == [approval]
    await h.tick(3289.0)
    assert len(h.of(EventKind.RISK_CHANGE_PROPOSED)) == 1  # proposed once
    h.clock.now = datetime(2026, 3, 11, 3, 0, tzinfo=NOW.tzinfo)  # next WIB day: still stopped
    await h.tick(3289.0, seconds=0)
    assert h.engine.mode().mode is RiskMode.STOPPED
    # the engine's proposal expired; a user's resume asks for the same reset, and only approving it leaves STOPPED
    assert [e.data["approval"].id for e in h.of(EventKind.APPROVAL_RESOLVED)] == [approval.id]
    r = await h.engine.resume("user:1")
    assert not r.applied and r.approval.change.kind == "reset_total"
    assert h.engine.mode().mode is RiskMode.STOPPED
    await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert h.engine.mode().mode is RiskMode.NORMAL
    assert h.engine.state.reference_balance == pytest.approx(h.broker.balance)


async def test_exit_rule_closes_with_its_name_as_the_reason() -> None:
    h = await make(params=WIDE_CAP)
    ticket = await h.open_buy(stop_loss=3260.0, take_profit=3380.0)
    await h.tick(3280.0)  # -$40: below max_loss (50 % of 1 % of 10,000 = $50)
    assert h.broker.positions_now() != []
    await h.tick(3274.0)  # -$52
    assert h.broker.positions_now() == []
    [trade] = h.recorder.closed
    assert trade.ticket == ticket and trade.reason == "max_loss" and trade.close_price == 3274.0
    assert trade.profit == pytest.approx(-52.0)
    [ev] = h.of(EventKind.TRADE_CLOSED)
    assert ev.data["by"] == "exit_rules"
    assert h.engine.state.consecutive_losses == 1


async def test_flash_crash_by_ticks_closes_all_and_cools_down() -> None:
    h = await make()
    await h.open_buy(take_profit=3500.0)
    await h.open_buy(take_profit=3500.0)
    await h.tick(3300.0)
    await h.tick(3390.0, seconds=30)  # +2.7 % within 30 s
    assert h.broker.positions_now() == []
    assert {t.reason for t in h.recorder.closed} == {"flash_crash"}
    [ev] = h.of(EventKind.EMERGENCY_CLOSE)
    assert ev.data["closed"] == 2
    mode = h.engine.mode()
    assert mode.mode is RiskMode.COOLDOWN and "flash crash" in mode.reason
    h.clock.advance(minutes=15)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "risk_mode"
    h.clock.advance(minutes=46)
    await h.tick(3390.0)
    assert h.engine.mode().mode is RiskMode.NORMAL  # cooldown (60 min) expired


async def test_a_slow_move_is_no_flash_crash() -> None:
    h = await make()
    await h.open_buy(take_profit=3500.0)
    for k in range(1, 5):  # +2.7 % over 2 minutes, at most ~1.4 % in any 60 s
        await h.tick(3300.0 + k * 22.5, seconds=30)
    assert h.of(EventKind.EMERGENCY_CLOSE) == []
    assert h.engine.mode().mode is RiskMode.NORMAL


async def test_flash_crash_by_bars_closes_all_before_deciding() -> None:
    h = await make()
    await h.open_buy(take_profit=3500.0)
    h.clock.advance(minutes=15)
    h.analyzer.next = analysis(recent_closes=(3300.0, 3290.0, 3250.0, 3230.0, 3210.0))
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "flash_crash_guard"
    assert h.broker.positions_now() == [] and len(h.of(EventKind.EMERGENCY_CLOSE)) == 1
    assert h.engine.mode().mode is RiskMode.COOLDOWN


class SlowBroker(PaperBroker):
    """A broker whose position list is a snapshot that arrives late (like an MT5 call through a thread)."""

    async def positions(self):  # type: ignore[no-untyped-def]
        snapshot = self.positions_now()
        for _ in range(50):
            await asyncio.sleep(0)
        return snapshot


async def test_a_bar_entry_during_a_tick_is_not_mistaken_for_a_broker_close() -> None:
    clock = Clock(NOW)
    broker = SlowBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(Tick(NOW, 3299.8, 3300.0))
    rec = MemoryRecorder()
    engine = TradingEngine(
        broker, StubAnalyzer(), recorder=rec, clock=clock, market_clock=lambda now: (None, None)
    )
    await engine.start()
    await asyncio.gather(engine.on_tick(), engine.on_bar(None))  # type: ignore[arg-type]
    await engine.on_tick()
    assert rec.closed == [] and engine.state.daily_trades == 0
    assert [p.ticket for p in broker.positions_now()] == list(engine.positions) == [rec.opened[0].ticket]


class NoHistoryBroker(PaperBroker):
    """A broker whose deal history lags (MT5's history can): no closing deal is visible yet."""

    async def deals_since(self, since):  # type: ignore[no-untyped-def]
        return []


async def test_a_broker_close_without_a_visible_deal_is_booked_at_the_last_price() -> None:
    clock = Clock(NOW)
    broker = NoHistoryBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(Tick(NOW, 3299.8, 3300.0))
    rec = MemoryRecorder()
    engine = TradingEngine(
        broker, StubAnalyzer(), recorder=rec, clock=clock, market_clock=lambda now: (None, None)
    )
    await engine.start()
    await engine.on_bar(None)  # type: ignore[arg-type]
    clock.advance(seconds=1)
    broker.set_tick(Tick(clock.now, 3289.0, 3289.2))
    await engine.on_tick()
    [trade] = rec.closed
    assert trade.reason == "broker" and trade.close_price == 3289.0
    assert trade.profit == pytest.approx(-22.0)  # not a loss computed from a price of 0


# ---------------------------------------------------------------------------------------- commands


async def test_pause_blocks_entries_but_positions_are_still_managed() -> None:
    h = await make()
    await h.open_buy()
    r = await h.engine.pause("op")
    assert r.applied and h.engine.paused and h.of(EventKind.PAUSED)[0].data["by"] == "op"
    assert not (await h.engine.pause("op")).applied
    h.clock.advance(minutes=15)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "risk_mode" and "paused" in d.reason
    await h.tick(3310.0)
    assert h.broker.positions_now()[0].sl == 3302.5  # breakeven while paused
    assert h.recorder.state["paused"] is True
    r = await h.engine.resume("op")
    assert r.applied and not h.engine.paused and EventKind.RESUMED in h.kinds()
    assert not (await h.engine.resume("op")).applied
    h.clock.advance(minutes=15)
    assert (await h.engine.on_bar(None)).action == "enter"  # type: ignore[arg-type]


async def test_close_one_and_close_all() -> None:
    h = await make()
    a = await h.open_buy()
    b = await h.open_buy()
    await h.tick(3305.0)
    trade = await h.engine.close(a, by="user:1")
    assert trade is not None and trade.reason == "manual" and trade.profit == pytest.approx(10.0)
    assert [p.ticket for p in h.broker.positions_now()] == [b]
    with pytest.raises(KeyError):
        await h.engine.close(a, by="user:1")
    assert await h.engine.close_all(by="user:1") == 1
    assert h.broker.positions_now() == [] and h.engine.positions == {}
    assert [t.reason for t in h.recorder.closed] == ["manual", "close_all"]
    assert h.engine.state.daily_trades == 2
    assert await h.engine.close_all(by="user:1") == 0


async def test_closing_a_position_the_broker_already_closed() -> None:
    h = await make()
    ticket = await h.open_buy()
    h.price(3289.0)  # the broker's SL fired; the engine has not looked yet
    assert await h.engine.close(ticket, by="user:1") is None
    [failed] = h.of(EventKind.ORDER_FAILED)
    assert failed.data["ticket"] == ticket
    await h.engine.on_tick()
    [trade] = h.recorder.closed
    assert trade.reason == "broker_sl" and h.engine.state.consecutive_losses == 1


async def test_a_trades_profit_is_net_of_both_commissions() -> None:
    h = await make(commission_per_lot=7.0)  # $0.14 per 0.02-lot deal, in and out
    ticket = await h.open_buy()
    await h.tick(3305.0)
    trade = await h.engine.close(ticket, by="user:1")
    assert trade.profit == pytest.approx(10.0 - 0.14 - 0.14)
    assert h.broker.balance == pytest.approx(10_000.0 + trade.profit)
    assert h.engine.state.daily_realized == pytest.approx(trade.profit)


async def test_snapshot_reports_state() -> None:
    h = await make()
    await h.open_buy()
    await h.tick(3301.0)
    snap = h.engine.snapshot()
    assert snap.time == h.clock.now and snap.started == NOW
    assert [p.ticket for p in snap.positions] == [1]
    assert snap.mode.mode is RiskMode.NORMAL and not snap.paused
    assert snap.account.balance == 10_000.0 and snap.risk is h.engine.state
    assert snap.last_decision is h.engine.last_decision and snap.analysis is h.engine.analysis
    assert snap.pending_approvals == ()
    assert {"analysis", "entry", "fetch", "exits"} <= set(snap.timing)


async def test_resume_from_stopped_asks_for_approval() -> None:
    h = await make(limits=RiskLimits(daily_loss_pct=0.2))  # $20
    await h.open_buy()
    await h.tick(3289.0)
    assert h.engine.mode().mode is RiskMode.STOPPED
    r = await h.engine.resume("user:1")
    assert not r.applied and r.approval is not None and r.approval.change.kind == "resume_stopped"
    assert h.engine.mode().mode is RiskMode.STOPPED
    done = await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert done.status is ApprovalStatus.APPROVED
    assert h.engine.mode().mode is not RiskMode.STOPPED
    assert h.engine.state.stop_override_day == h.engine.state.day


# ---------------------------------------------------------------------------------------- approvals


def change(kind: str, **params: object) -> RiskChange:
    return RiskChange(kind, f"{kind} {params}", dict(params))


async def test_tightening_applies_at_once() -> None:
    h = await make()
    r = await h.engine.request_risk_change(change("mode", mode="protected"), "user:1")
    assert r.applied and r.approval is None
    assert h.engine.state.manual_floor is RiskMode.PROTECTED and h.engine.mode().mode is RiskMode.PROTECTED
    r = await h.engine.request_risk_change(
        change("limits", risk_per_trade_pct=0.5, max_positions=1), "user:1"
    )
    assert r.applied and h.engine.limits.risk_per_trade_pct == 0.5 and h.engine.limits.max_positions == 1
    assert len(h.of(EventKind.RISK_CHANGE_APPLIED)) == 2 and h.of(EventKind.RISK_CHANGE_PROPOSED) == []
    assert h.recorder.state["limits"]["risk_per_trade_pct"] == 0.5
    assert h.recorder.state["risk"]["manual_floor"] == "PROTECTED"
    assert h.engine.approvals.pending(h.clock.now) == []


@pytest.mark.parametrize(
    "request_",
    [
        change("mode", mode="NORMAL"),  # below the PROTECTED floor set first
        change("limits", risk_per_trade_pct=2.0),
        change("limits", risk_per_trade_pct=0.5, max_positions=3),  # mixed: any loosening needs approval
        change("limits", daily_loss_pct=5.0),
    ],
    ids=["riskier mode", "higher risk", "mixed", "higher limit"],
)
async def test_loosening_waits_for_approval_and_applies_once(request_: RiskChange) -> None:
    h = await make()
    await h.engine.request_risk_change(change("mode", mode="PROTECTED"), "user:1")
    before_state, before_limits = h.engine.state, h.engine.limits
    r = await h.engine.request_risk_change(request_, "user:1")
    assert not r.applied and r.approval is not None and r.approval.status is ApprovalStatus.PENDING
    assert r.approval.expires == h.clock.now + timedelta(minutes=10)
    assert (h.engine.state, h.engine.limits) == (before_state, before_limits)
    assert h.of(EventKind.RISK_CHANGE_PROPOSED)[-1].data["approval"] == r.approval
    assert h.engine.snapshot().pending_approvals == (r.approval,)
    h.clock.advance(minutes=2)
    done = await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert done.status is ApprovalStatus.APPROVED and done.resolved_by == "admin"
    after_state, after_limits = h.engine.state, h.engine.limits
    assert (after_state, after_limits) != (before_state, before_limits)
    applied = len(h.of(EventKind.RISK_CHANGE_APPLIED))
    with pytest.raises(ApprovalError, match="already approved"):
        await h.engine.resolve_approval(r.approval.id, True, "admin")
    with pytest.raises(ApprovalError):
        await h.engine.resolve_approval(r.approval.id, False, "other")
    assert (h.engine.state, h.engine.limits) == (after_state, after_limits)
    assert len(h.of(EventKind.RISK_CHANGE_APPLIED)) == applied
    assert h.engine.snapshot().pending_approvals == ()


async def test_approved_mode_and_risk_changes_take_effect() -> None:
    h = await make()
    await h.engine.request_risk_change(change("mode", mode="PROTECTED"), "u")
    r = await h.engine.request_risk_change(change("mode", mode="NORMAL"), "u")
    await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert h.engine.state.manual_floor is RiskMode.NORMAL and h.engine.mode().mode is RiskMode.NORMAL
    r = await h.engine.request_risk_change(change("limits", risk_per_trade_pct=2.0), "u")
    await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert h.engine.limits.risk_per_trade_pct == 2.0


async def test_reject_changes_nothing() -> None:
    h = await make()
    r = await h.engine.request_risk_change(change("limits", risk_per_trade_pct=2.0), "user:1")
    done = await h.engine.resolve_approval(r.approval.id, False, "admin")
    assert done.status is ApprovalStatus.REJECTED
    assert h.engine.limits == RiskLimits()
    assert h.of(EventKind.RISK_CHANGE_APPLIED) == []
    assert h.of(EventKind.APPROVAL_RESOLVED)[-1].data["approval"].status is ApprovalStatus.REJECTED
    with pytest.raises(ApprovalError, match="already rejected"):
        await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert h.engine.limits == RiskLimits()


async def test_expiry_on_tick_publishes_and_refuses_a_late_answer() -> None:
    h = await make()
    r = await h.engine.request_risk_change(change("limits", risk_per_trade_pct=2.0), "user:1")
    await h.tick(3300.0, seconds=599)
    assert h.of(EventKind.APPROVAL_RESOLVED) == []
    await h.tick(3300.0, seconds=1)  # 10 min TTL reached
    [ev] = h.of(EventKind.APPROVAL_RESOLVED)
    assert ev.data["approval"].id == r.approval.id and ev.data["approval"].status is ApprovalStatus.EXPIRED
    await h.tick(3300.0)
    assert len(h.of(EventKind.APPROVAL_RESOLVED)) == 1  # expired once
    with pytest.raises(ApprovalError, match="expired"):
        await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert h.engine.limits == RiskLimits() and h.of(EventKind.RISK_CHANGE_APPLIED) == []


async def test_unknown_approval_id() -> None:
    h = await make()
    with pytest.raises(ApprovalError, match="unknown"):
        await h.engine.resolve_approval("deadbeef", True, "admin")


@pytest.mark.parametrize(
    "bad",
    [
        change("mode", mode="TURBO"),
        change("mode"),
        change("limits", risk_per_trade_pct=-1.0),
        change("limits", risk_per_trade_pct=9.0),
        change("limits", min_lot=0.05),  # above max_lot
        change("limits", risk_per_trade_pct="2"),
        change("limits", leverage=500),
        change("turbo"),
    ],
    ids=[
        "unknown mode",
        "no mode",
        "negative risk",
        "risk too high",
        "min above max",
        "text",
        "unknown field",
        "unknown kind",
    ],
)
async def test_bad_values_raise_value_error_and_change_nothing(bad: RiskChange) -> None:
    h = await make()
    before = (h.engine.state, h.engine.limits, dict(h.recorder.state))
    with pytest.raises(ValueError):
        await h.engine.request_risk_change(bad, "user:1")
    assert (h.engine.state, h.engine.limits, h.recorder.state) == before
    assert h.events == [] and h.engine.approvals.pending(h.clock.now) == []


async def test_resume_from_a_user_set_stop_needs_approval_and_then_trades() -> None:
    h = await make()
    r = await h.engine.request_risk_change(change("mode", mode="STOPPED"), "user:1")
    assert r.applied and h.engine.mode().mode is RiskMode.STOPPED
    r = await h.engine.resume("user:1")
    assert not r.applied and r.approval is not None
    await h.engine.resolve_approval(r.approval.id, True, "admin")
    assert h.engine.mode().mode is RiskMode.NORMAL
    assert (await h.engine.on_bar(None)).action == "enter"  # type: ignore[arg-type]


async def test_a_late_resume_approval_does_not_switch_off_the_next_days_limit() -> None:
    h = await make(limits=RiskLimits(daily_loss_pct=0.1))  # $10; the night halves the lot to 0.01
    h.clock.now = datetime(2026, 3, 10, 16, 40, tzinfo=NOW.tzinfo)  # 23:40 WIB
    await h.open_buy()  # 16:55 UTC
    await h.tick(3289.0)  # -$11: daily STOPPED
    assert h.engine.mode().mode is RiskMode.STOPPED
    r = await h.engine.resume("user:1")
    h.clock.now = datetime(2026, 3, 10, 17, 1, tzinfo=NOW.tzinfo)  # 00:01 WIB: new day, stop cleared
    await h.tick(3300.0, seconds=0)
    assert h.engine.mode().mode is RiskMode.NORMAL
    await h.engine.resolve_approval(r.approval.id, True, "admin")  # within its 10 min
    await h.open_buy()
    await h.tick(3289.0)  # the new day's limit is hit: it must stop again
    assert h.engine.mode().mode is RiskMode.STOPPED


async def test_a_hand_close_counts_in_the_limits_not_in_the_streak_and_starts_the_cooldown() -> None:
    h = await make()
    ticket = await h.open_buy()
    h.clock.advance(minutes=20)  # well past the entry cooldown
    await h.tick(3295.0)  # a loss of $10 on the position
    trade = await h.engine.close(ticket, by="user:1")
    assert trade is not None and trade.profit < 0
    state = h.engine.state
    assert state.daily_realized == pytest.approx(trade.profit) and state.daily_trades == 1  # limits count it
    assert state.consecutive_losses == 0  # not the strategy's loss
    h.clock.advance(seconds=2)
    d = await h.engine.on_bar(None)  # type: ignore[arg-type]
    assert d.blocked_by == "cooldown"  # no new entry two seconds after the hand close
    h.clock.advance(seconds=300)
    assert (await h.engine.on_bar(None)).action == "enter"  # type: ignore[arg-type]


def test_hand_close_keeps_the_streak() -> None:
    from trading.risk.modes import hand_close_keeps_the_streak

    assert hand_close_keeps_the_streak(2, -5.0, by_hand=False) == 3
    assert hand_close_keeps_the_streak(2, 5.0, by_hand=False) == 0
    assert hand_close_keeps_the_streak(2, -5.0, by_hand=True) == 2
    assert hand_close_keeps_the_streak(2, 5.0, by_hand=True) == 2
