"""Exit rules and the position manager, each rule alone with DOC figures at 0.01 lot, ATR $12."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from trading.bounds import At
from trading.domain import Position, Side
from trading.exits import PositionTracker, evaluate_exits, momentum, tp_probability
from trading.parameters import StrategyParams
from trading.position_inputs import Held, PositionInputs, held_at
from trading.position_manager import PMKind, manage_position, sl_hit_percent, urgency_score

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
P = StrategyParams()
UNIT = 12.0  # ATR $12 × 0.01 lot × 100 oz: one ATR unit is $12, so DOC dollars apply directly
BUY = Position(1, "XAUUSD", Side.BUY, 0.01, 3300.0, T0, sl=3288.0, tp=3324.0)


def inputs(
    *,
    ml_against: float | None = None,
    daily_loss: float = 0.0,
    regime_dangerous: bool = False,
    rsi: float | None = 50.0,
    closes: tuple[float, ...] = (),
    last_bar_range: float = 5.0,
    position: Position = BUY,
) -> PositionInputs:
    """One bar's inputs at ATR $12 on 0.01 lot, a $5,000 balance and a $150 daily limit."""
    return PositionInputs(
        atr=12.0,
        unit=UNIT,
        ml_against=ml_against,
        regime_dangerous=regime_dangerous,
        rsi=rsi,
        closes=closes,
        last_bar_range=last_bar_range,
        tp_profit=24.0,
        daily_loss=daily_loss,
        daily_limit=150.0,
        balance=5000.0,
        urgency=urgency_score(position.side, regime_dangerous, ml_against, rsi, closes),
    )


def exit_ctx(
    profit: float,
    *,
    minutes: float = 10,
    samples: tuple[float, ...] = (),
    ml_against: float | None = None,
    peak: float | None = None,
    daily_loss: float = 0.0,
    weekly: float | None = None,
    warnings: int = 0,
    stall_count: int = 0,
) -> tuple[Held, At]:
    tracker = PositionTracker(1)
    tracker.profits.extend(samples)
    tracker.peak_profit = max(peak if peak is not None else profit, 0.0)
    tracker.reversal_warnings = warnings
    tracker.stall_count = stall_count
    now = T0 + timedelta(minutes=minutes)
    view = held_at(BUY, inputs(ml_against=ml_against, daily_loss=daily_loss), P, tracker, now, None, weekly)
    price = BUY.open_price + profit / 100 / BUY.volume
    return view, At(profit, price, price - BUY.open_price, tracker.peak_profit)


def closes_with(verdict_name: str, ctx: tuple[Held, At]) -> bool:
    v = evaluate_exits(*ctx)
    return v is not None and v.name == verdict_name


def test_momentum_needs_three_samples_and_is_clamped() -> None:
    assert momentum([1.0, 2.0], 10) == 0.0
    assert momentum([0.0, 5.0, 10.0], 10) == 50.0
    assert momentum([0.0, 0.0, 0.0, 0.0, 100.0], 10) == 100.0


def test_tp_probability_formula() -> None:
    assert tp_probability(10, None, 0, [], 1) == 50.0
    # progress 50 % → 20; momentum 0 → 15; trend 10; hours 1 → -2  = 43
    assert tp_probability(12, 24, 0, [], 1) == pytest.approx(43.0)


def test_hard_take_profit_at_40_dollars() -> None:
    assert closes_with("smart_take_profit", exit_ctx(40.0))
    assert evaluate_exits(*exit_ctx(39.0, samples=(30, 35, 39))) is None


def test_momentum_take_profit_and_peak_protection() -> None:
    # $26 with momentum (26-40)/12*50 = -58 < -30
    assert closes_with("smart_take_profit", exit_ctx(26.0, samples=(40, 35, 30, 28, 26)))
    assert closes_with("smart_take_profit", exit_ctx(17.0, peak=31.0, samples=(17, 17, 17)))


def test_early_exit_needs_ml_against() -> None:
    falling = (16.0, 14.0, 12.0, 10.0, 8.0)  # momentum (8-16)/10×50 = -40: not steep enough
    steep = (22.0, 16.0, 12.0, 9.0, 8.0)
    assert evaluate_exits(*exit_ctx(8.0, samples=falling, ml_against=0.7)) is None
    assert closes_with("early_exit", exit_ctx(8.0, samples=steep, ml_against=0.7))
    assert evaluate_exits(*exit_ctx(8.0, samples=steep, ml_against=0.5)) is None


def test_early_cut_and_max_loss() -> None:
    # max loss = 1 % of $5000 = $50; early cut at ≥ $15 loss with momentum < -50
    assert closes_with("early_cut", exit_ctx(-16.0, samples=(0.0, -5.0, -10.0, -13.0, -16.0)))
    assert evaluate_exits(*exit_ctx(-16.0, samples=(-16.0, -16.0, -16.0))) is None
    assert closes_with("max_loss", exit_ctx(-25.0, samples=(-25.0, -25.0, -25.0)))


def test_ml_reversal_by_confidence_and_by_warnings() -> None:
    assert closes_with("ml_reversal", exit_ctx(-21.0, ml_against=0.8, samples=(-21, -21, -21)))
    assert evaluate_exits(*exit_ctx(-19.0, ml_against=0.8, samples=(-19, -19, -19))) is None  # < 40 % of $50
    assert closes_with("ml_reversal", exit_ctx(-11.0, warnings=3, samples=(-11, -11, -11)))


def test_stall_daily_limit_weekend_time() -> None:
    assert closes_with("stall", exit_ctx(-16.0, stall_count=5, samples=(-16, -16, -16)))
    assert closes_with("daily_limit", exit_ctx(-10.0, daily_loss=141.0, samples=(-10, -10, -10)))
    assert closes_with("weekend", exit_ctx(2.0, weekly=20, samples=(2, 2, 2)))
    assert closes_with("weekend", exit_ctx(-5.0, weekly=20, samples=(-5, -5, -5)))
    assert evaluate_exits(*exit_ctx(-11.0, weekly=20, samples=(-11, -11, -11))) is None
    assert closes_with("time_limit", exit_ctx(3.0, minutes=8 * 60, samples=(3, 4, 5)))
    assert closes_with("time_limit", exit_ctx(3.0, minutes=4 * 60 + 1, samples=(3, 3, 3)))
    assert evaluate_exits(*exit_ctx(3.0, minutes=4 * 60 + 1, samples=(1, 2, 3))) is None  # growing


def test_tracker_samples_once_per_period_and_counts_stalls() -> None:
    t = PositionTracker(1)
    for i in range(12):
        t.observe(-20.0, T0 + timedelta(seconds=30 * i), None, P, UNIT)
    assert len(t.profits) == 6  # one sample per 60 s
    for i in range(12, 40):
        t.observe(-20.0, T0 + timedelta(seconds=30 * i), 0.8, P, UNIT)
    assert t.stall_count >= 5 and t.reversal_warnings >= 3


def pm_ctx(
    price: float,
    profit: float,
    *,
    position: Position = BUY,
    peak_profit: float | None = None,
    params: StrategyParams = P,
    minutes_to_daily_close: float | None = None,
    minutes_to_weekly_close: float | None = None,
    **kw: object,
) -> tuple[Held, At]:
    tracker = PositionTracker(1)
    view = held_at(
        position,
        inputs(position=position, **kw),  # type: ignore[arg-type]
        params,
        tracker,
        T0,
        minutes_to_daily_close,
        minutes_to_weekly_close,
    )
    peak = max(profit, 0.0) if peak_profit is None else peak_profit
    return view, At(profit, price, (price - position.open_price) * position.side.sign, peak)


def test_breakeven_then_trailing_only_improve_the_stop() -> None:
    doc = replace(P, trail_start_atr=4.0, trail_step_atr=3.0)  # the DOC's trail: 4 ATR, 3 behind
    a = manage_position(*pm_ctx(3324.0, 24.0, params=doc))  # +2 ATR → breakeven at entry + 0.5 ATR
    assert a.kind is PMKind.MOVE_SL and a.name == "breakeven" and a.new_sl == 3306.0
    at_be = replace(BUY, sl=3306.0)
    t = manage_position(
        *pm_ctx(3348.0, 48.0, position=at_be, peak_profit=48.0, params=doc)
    )  # +4 ATR → 3 behind
    assert t.kind is PMKind.MOVE_SL and t.name == "trailing_stop" and t.new_sl == 3312.0
    impulse = manage_position(
        *pm_ctx(3348.0, 48.0, position=at_be, peak_profit=48.0, last_bar_range=20.0, params=doc)
    )
    assert impulse.new_sl == 3330.0  # step 1.5 ATR on an impulse candle
    trailed = replace(BUY, sl=3340.0)
    assert (
        manage_position(*pm_ctx(3348.0, 48.0, position=trailed, peak_profit=48.0, params=doc)).kind
        is PMKind.HOLD
    )
    # the defaults trail from 2.5 ATR, 1.5 behind (below the hard take-profit: trading.coherence)
    d = manage_position(*pm_ctx(3330.0, 30.0, position=at_be, peak_profit=30.0))
    assert d.name == "trailing_stop" and d.new_sl == 3312.0


def test_regime_danger_opposite_signal_peak_drawdown_urgency() -> None:
    assert manage_position(*pm_ctx(3351.0, 51.0, regime_dangerous=True)).name == "regime_danger"
    assert manage_position(*pm_ctx(3340.0, 40.0, ml_against=0.8)).name == "opposite_signal"
    assert manage_position(*pm_ctx(3330.0, 30.0, peak_profit=60.0)).name == "peak_drawdown"
    falling = tuple(3400.0 - i * 3 for i in range(25))  # MA5 < MA20 and ROC5 < -0.3 %
    c = pm_ctx(3305.0, 5.0, regime_dangerous=True, rsi=80.0, closes=falling)
    assert c[0].inputs.urgency == urgency_score(Side.BUY, True, None, 80.0, falling) == 8
    assert manage_position(*c).name == "urgency"


def test_market_close_handler() -> None:
    assert manage_position(*pm_ctx(3311.0, 11.0, minutes_to_daily_close=60)).name == "market_close"
    hold = manage_position(*pm_ctx(3295.0, -5.0, minutes_to_daily_close=60))
    assert hold.kind is PMKind.HOLD
    # near the weekly close, 60 % of the way to the SL → cut
    assert sl_hit_percent(BUY, 3292.8) == pytest.approx(60.0)
    assert manage_position(*pm_ctx(3292.8, -7.2, minutes_to_weekly_close=90)).name == "market_close"
    assert manage_position(*pm_ctx(3298.0, -2.0, minutes_to_weekly_close=90)).kind is PMKind.HOLD
    assert manage_position(*pm_ctx(3302.0, 2.0, minutes_to_daily_close=20)).name == "market_close"
    assert manage_position(*pm_ctx(3302.0, 2.0, minutes_to_daily_close=200)).kind is PMKind.HOLD
