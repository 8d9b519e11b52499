"""Position manager (spec §3.5-3.6, DOC defaults): market-close handling, regime danger, opposite
signal, peak drawdown, urgency, breakeven and trailing stop. First match wins.

Each step returns a `PMAction`: CLOSE, MOVE_SL (sent to the broker by the engine) or HOLD.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from trading.domain import Position, Side
from trading.parameters import StrategyParams


class PMKind(StrEnum):
    CLOSE = "close"
    MOVE_SL = "move_sl"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class PMAction:
    kind: PMKind
    name: str
    reason: str
    new_sl: float = 0.0


HOLD = PMAction(PMKind.HOLD, "hold", "")


@dataclass(frozen=True, slots=True)
class PMContext:
    position: Position
    price: float  # the price the position would close at now
    profit: float
    peak_profit: float
    unit: float  # ATR money units for this position
    atr: float
    params: StrategyParams
    regime_dangerous: bool
    ml_against: float | None
    rsi: float | None
    closes: Sequence[float]  # recent closes, oldest first (≥ 21 for the trend check)
    last_bar_range: float
    minutes_to_daily_close: float | None
    minutes_to_weekly_close: float | None


def sl_hit_percent(position: Position, price: float) -> float:
    """How far price has travelled towards the SL, in % of the entry-SL distance (0 when in profit)."""
    if position.sl <= 0:
        return 0.0
    distance = abs(position.open_price - position.sl)
    adverse = (position.open_price - price) * position.side.sign
    return max(0.0, adverse / distance * 100) if distance > 0 else 0.0


def market_close(c: PMContext) -> PMAction:
    """SmartMarketCloseHandler with the near-weekend window fixed (within `close_near_hours` of the weekly close)."""
    p, u = c.params, c.unit
    near_hours = p.close_near_hours * 60
    weekly = c.minutes_to_weekly_close
    daily = c.minutes_to_daily_close
    near_weekend = weekly is not None and weekly <= near_hours
    near_daily = daily is not None and daily <= near_hours
    if not (near_weekend or near_daily):
        return HOLD
    to_close = min(m for m in (weekly, daily) if m is not None)
    if c.profit >= p.close_min_profit_atr * u:
        return PMAction(
            PMKind.CLOSE, "market_close", f"take ${c.profit:.2f} {to_close:.0f} min before the close"
        )
    if c.profit < 0 and near_weekend:
        hit = sl_hit_percent(c.position, c.price)
        if hit >= p.close_weekend_sl_pct or -c.profit > p.close_max_hold_loss_atr * u:
            return PMAction(
                PMKind.CLOSE, "market_close", f"cut ${-c.profit:.2f} before the weekend ({hit:.0f}% to SL)"
            )
        return HOLD
    if c.profit < 0 and near_daily:
        if -c.profit > p.close_max_hold_loss_atr * u:
            return PMAction(PMKind.CLOSE, "market_close", f"cut ${-c.profit:.2f} before the daily close")
        return HOLD
    if c.profit > 0 and to_close < p.close_last_minutes:
        return PMAction(
            PMKind.CLOSE, "market_close", f"small profit ${c.profit:.2f}, {to_close:.0f} min to the close"
        )
    return HOLD


def regime_danger(c: PMContext) -> PMAction:
    protect = c.params.pm_protect_atr * c.unit
    if c.regime_dangerous and c.profit > protect:
        return PMAction(PMKind.CLOSE, "regime_danger", f"high-volatility regime, lock ${c.profit:.2f}")
    return HOLD


def opposite_signal(c: PMContext) -> PMAction:
    threshold = 0.75 * c.params.pm_protect_atr * c.unit
    if c.ml_against is not None and c.ml_against >= c.params.pm_opposite_ml and c.profit > threshold:
        return PMAction(
            PMKind.CLOSE, "opposite_signal", f"ML {c.ml_against:.0%} against, lock ${c.profit:.2f}"
        )
    return HOLD


def peak_drawdown(c: PMContext) -> PMAction:
    peak = c.peak_profit
    if peak > c.params.pm_protect_atr * c.unit and (peak - c.profit) / peak > c.params.pm_peak_drawdown:
        return PMAction(
            PMKind.CLOSE, "peak_drawdown", f"gave back {(peak - c.profit) / peak:.0%} of peak ${peak:.2f}"
        )
    return HOLD


def urgency_score(c: PMContext) -> int:
    side = c.position.side
    score = 3 if c.regime_dangerous else 0
    if c.ml_against is not None and c.ml_against > 0.75:
        score += 2
    if c.rsi is not None and ((side is Side.BUY and c.rsi > 75) or (side is Side.SELL and c.rsi < 25)):
        score += 2
    closes = c.closes
    if len(closes) >= 20:
        ma5, ma20 = sum(closes[-5:]) / 5, sum(closes[-20:]) / 20
        trend = 1 if ma5 > ma20 * 1.001 else -1 if ma5 < ma20 * 0.999 else 0
        roc = (closes[-1] / closes[-6] - 1) * 100 if len(closes) >= 6 and closes[-6] > 0 else 0.0
        mom = 1 if roc > 0.3 else -1 if roc < -0.3 else 0
        if trend == -side.sign and mom == -side.sign:
            score += 3
    return score


def urgency(c: PMContext) -> PMAction:
    score = urgency_score(c)
    if score >= c.params.pm_urgency_close and c.profit > 0:
        return PMAction(PMKind.CLOSE, "urgency", f"urgency {score} with profit ${c.profit:.2f}")
    return HOLD


def stop_improves(position: Position, new_sl: float) -> bool:
    """Whether `new_sl` is a better stop for `position` than its current one (no stop: any is)."""
    if position.side is Side.BUY:
        return new_sl > position.sl
    return position.sl <= 0 or new_sl < position.sl


def breakeven(c: PMContext) -> PMAction:
    pos, p = c.position, c.params
    if c.atr <= 0 or pos.sl <= 0:
        return HOLD
    move = (c.price - pos.open_price) * pos.side.sign
    if move < p.breakeven_atr * c.atr:
        return HOLD
    new_sl = round(pos.open_price + pos.side.sign * p.breakeven_buffer_atr * c.atr, 2)
    if stop_improves(pos, new_sl):
        return PMAction(PMKind.MOVE_SL, "breakeven", f"moved {move:.2f} ≥ {p.breakeven_atr:g} ATR", new_sl)
    return HOLD


def trailing_stop(c: PMContext) -> PMAction:
    pos, p = c.position, c.params
    if c.atr <= 0:
        return HOLD
    move = (c.price - pos.open_price) * pos.side.sign
    if move < p.trail_start_atr * c.atr:
        return HOLD
    step = p.trail_step_atr * c.atr
    if c.last_bar_range > p.impulse_range_atr * c.atr:
        step = min(step, p.impulse_step_atr * c.atr)
    new_sl = round(c.price - pos.side.sign * step, 2)
    if stop_improves(pos, new_sl):
        return PMAction(PMKind.MOVE_SL, "trailing_stop", f"trail {step:.2f} behind {c.price:.2f}", new_sl)
    return HOLD


PM_RULES = (market_close, regime_danger, opposite_signal, peak_drawdown, urgency, breakeven, trailing_stop)


def manage_position(c: PMContext) -> PMAction:
    for rule in PM_RULES:
        action = rule(c)
        if action.kind is not PMKind.HOLD:
            return action
    return HOLD
