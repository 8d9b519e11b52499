"""Position manager (spec §3.5-3.6, DOC defaults): market-close handling, regime danger, opposite
signal, peak drawdown, urgency, breakeven and trailing stop. First match wins.

Each rule declares the bounds it acts on (`trading.bounds`, as the exits); `manage_position` returns a
`PMAction`: CLOSE, MOVE_SL (sent to the broker by the engine) or HOLD.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trading.bounds import (
    At,
    AtLeast,
    Bound,
    Bounds,
    DrawsDown,
    Fired,
    MoveAtLeast,
    Rule,
    above,
    below,
    rule,
)
from trading.domain import Position, Side
from trading.position_inputs import Held, urgency_score

__all__ = [
    "HOLD",
    "PM_RULES",
    "PMAction",
    "PMKind",
    "manage_position",
    "sl_hit_percent",
    "stop_improves",
    "urgency_score",
]

STOP_MARGIN = 0.01  # a trailing stop rounded to cents moves at most 0.005


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


def sl_hit_percent(position: Position, price: float) -> float:
    """How far price has travelled towards the SL, in % of the entry-SL distance (0 when in profit)."""
    if position.sl <= 0:
        return 0.0
    distance = abs(position.open_price - position.sl)
    adverse = (position.open_price - price) * position.side.sign
    return max(0.0, adverse / distance * 100) if distance > 0 else 0.0


def _weekend_cut(v: Held, at: At) -> Fired | None:
    """A loss before the weekend is cut when the price is far enough towards the stop, or too large."""
    p = v.params
    hit = sl_hit_percent(v.position, at.price)
    if hit >= p.close_weekend_sl_pct or -at.profit > p.close_max_hold_loss_atr * v.unit:
        return Fired(f"cut ${-at.profit:.2f} before the weekend ({hit:.0f}% to SL)")
    return None


@rule()
def market_close(v: Held) -> Bounds:
    """SmartMarketCloseHandler with the near-weekend window fixed (within `close_near_hours` of the weekly close)."""
    p, u = v.params, v.unit
    near_hours = p.close_near_hours * 60
    weekly = v.minutes_to_weekly_close
    daily = v.minutes_to_daily_close
    near_weekend = weekly is not None and weekly <= near_hours
    near_daily = daily is not None and daily <= near_hours
    if not (near_weekend or near_daily):
        return ()
    bounds: list[Bound] = [
        AtLeast(
            p.close_min_profit_atr * u, why="take ${profit:.2f} {v.minutes_to_close:.0f} min before the close"
        )
    ]
    if near_weekend:
        bounds.append(below(0.0, "", then=_weekend_cut))
    elif near_daily:  # a loss held over the daily close unless it is too large
        cut = min(0.0, -(p.close_max_hold_loss_atr * u))
        bounds.append(below(cut, "cut ${loss:.2f} before the daily close"))
    if v.minutes_to_close < p.close_last_minutes:
        bounds.append(above(0.0, "small profit ${profit:.2f}, {v.minutes_to_close:.0f} min to the close"))
    return tuple(bounds)


@rule(per_bar=True)
def regime_danger(v: Held) -> Bounds:
    if v.inputs.regime_dangerous:
        return (above(v.params.pm_protect_atr * v.unit, "high-volatility regime, lock ${profit:.2f}"),)
    return ()


@rule(per_bar=True)
def opposite_signal(v: Held) -> Bounds:
    ml = v.inputs.ml_against
    if ml is not None and ml >= v.params.pm_opposite_ml:
        threshold = 0.75 * v.params.pm_protect_atr * v.unit
        return (above(threshold, "ML {v.inputs.ml_against:.0%} against, lock ${profit:.2f}"),)
    return ()


def _gave_back(v: Held, at: At) -> Fired:
    return Fired(f"gave back {(at.peak - at.profit) / at.peak:.0%} of peak ${at.peak:.2f}")


@rule(per_bar=True)
def peak_drawdown(v: Held) -> Bounds:
    return (DrawsDown(v.params.pm_protect_atr * v.unit, v.params.pm_peak_drawdown, then=_gave_back),)


@rule(per_bar=True)
def urgency(v: Held) -> Bounds:
    if v.inputs.urgency >= v.params.pm_urgency_close:
        return (above(0.0, "urgency {v.inputs.urgency} with profit ${profit:.2f}"),)
    return ()


def stop_improves(position: Position, new_sl: float) -> bool:
    """Whether `new_sl` is a better stop for `position` than its current one (no stop: any is)."""
    if position.side is Side.BUY:
        return new_sl > position.sl
    return position.sl <= 0 or new_sl < position.sl


@rule(per_bar=True, moves_stop=True)
def breakeven(v: Held) -> Bounds:
    pos, p, atr = v.position, v.params, v.inputs.atr
    if atr <= 0 or pos.sl <= 0:
        return ()
    new_sl = round(pos.open_price + pos.side.sign * p.breakeven_buffer_atr * atr, 2)
    if not stop_improves(pos, new_sl):
        return ()
    return (MoveAtLeast(p.breakeven_atr * atr, new_sl, why="moved {move:.2f} ≥ {p.breakeven_atr:g} ATR"),)


def _trail_step(v: Held) -> float:
    p, atr = v.params, v.inputs.atr
    step = p.trail_step_atr * atr
    if v.inputs.last_bar_range > p.impulse_range_atr * atr:
        step = min(step, p.impulse_step_atr * atr)
    return step


def _trail(v: Held, at: At) -> Fired | None:
    pos, step = v.position, _trail_step(v)
    new_sl = round(at.price - pos.side.sign * step, 2)
    if stop_improves(pos, new_sl):
        return Fired(f"trail {step:.2f} behind {at.price:.2f}", new_sl)
    return None


@rule(per_bar=True, moves_stop=True)
def trailing_stop(v: Held) -> Bounds:
    """Trails `trail_step_atr` (on an impulse bar `impulse_step_atr`) behind the price from
    `trail_start_atr` of move, when that improves the stop: so not before the move at which the new
    stop, rounded to cents, passes the current one."""
    pos, p, atr = v.position, v.params, v.inputs.atr
    if atr <= 0:
        return ()
    start = p.trail_start_atr * atr
    if pos.side is Side.BUY or pos.sl > 0:  # else (a SELL with no stop) any trail improves it
        start = max(start, (pos.sl - pos.open_price) * pos.side.sign + _trail_step(v) - STOP_MARGIN)
    return (MoveAtLeast(start, then=_trail),)


PM_RULES: tuple[Rule, ...] = (
    market_close,
    regime_danger,
    opposite_signal,
    peak_drawdown,
    urgency,
    breakeven,
    trailing_stop,
)


def manage_position(v: Held, at: At) -> PMAction:
    hit = v.first_to_fire(PM_RULES, at)
    if hit is None:
        return HOLD
    pm_rule, fired = hit
    kind = PMKind.MOVE_SL if pm_rule.moves_stop else PMKind.CLOSE
    return PMAction(kind, pm_rule.__name__, fired.reason, fired.new_sl)
