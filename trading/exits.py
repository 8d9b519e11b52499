"""Software exit rules (decision 6): the DOC's conditions, thresholds in ATR money units.

Each rule reads the position's view (`Held`: the bar's inputs, the tracker, the clock) and declares the
bounds it closes on (`trading.bounds`); its verdict is those bounds checked against the tick, and the
backtest's hold band is folded from the same declarations (`trading.hold_band`). In a stretch of ticks
(`Held.stretch`) a rule that reads the profit samples declares what covers any samples taken in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading.bounds import (
    Always,
    At,
    AtLeast,
    AtMost,
    Bound,
    Bounds,
    Fired,
    GivesBack,
    LossReaches,
    Rule,
    Within,
    above,
    below,
    rule,
)
from trading.parameters import StrategyParams
from trading.position_inputs import Held
from trading.tracker import PositionTracker, momentum, stalled

__all__ = [
    "EXIT_RULES",
    "ExitVerdict",
    "PositionTracker",
    "evaluate_exits",
    "momentum",
    "stalled",
    "tp_probability",
    "tp_trend_points",
]

_LOSS = math.nextafter(0.0, -math.inf)  # profit < 0 as profit <= _LOSS


@dataclass(frozen=True, slots=True)
class ExitVerdict:
    name: str
    close: bool
    reason: str


def tp_trend_points(ml_for: list[float]) -> float:
    """The ML trend's share of `tp_probability` (0-20): how the last three ML samples moved for the position."""
    return max(0.0, min(20.0, (ml_for[-1] - ml_for[-3] + 0.3) / 0.6 * 20)) if len(ml_for) >= 3 else 10.0


def tp_probability(
    profit: float, tp_profit: float | None, mom: float, ml_for: list[float], hours: float
) -> float:
    """The DOC's take-profit probability score, 0-100 (50 when the TP profit is unknown)."""
    if not tp_profit or tp_profit <= 0:
        return 50.0
    progress = profit / tp_profit * 100
    score = (
        min(40.0, 0.4 * progress) + (mom + 100) / 200 * 30 + tp_trend_points(ml_for) - min(10.0, 2 * hours)
    )
    return max(0.0, min(100.0, score))


def probability_floor(
    trend: float, tp_profit: float | None, mom: float, p: StrategyParams, hours: float
) -> float:
    """The profit from which `tp_probability` is at least `tp_probability_below` (it rises with the
    profit), for the ML trend's points `trend`: below it the TP-probability exit may close. -inf:
    never, inf: always. It falls as the trend's points or the momentum rise, and rises with the hours."""
    below_ = p.tp_probability_below
    if below_ <= 0:
        return -math.inf
    if not tp_profit or tp_profit <= 0:  # the score is 50 without a TP
        return math.inf if below_ > 50.0 else -math.inf
    if below_ > 100:
        return math.inf
    rest = (mom + 100) / 200 * 30 + trend - min(10.0, 2 * hours)
    need = below_ - rest + 1e-9  # what min(40, 0.4 × progress) must reach (a margin for the rounding)
    if need <= 0:
        return -math.inf
    if need >= 40:
        return math.inf
    return need * tp_profit / 40


def _trend(ml_against: list[float]) -> float:
    return tp_trend_points([1 - x for x in ml_against[-3:]])  # it reads the last three


def _probability_top(v: Held) -> float:
    """`probability_floor` for the view: in a stretch, for the lowest momentum its samples may bring
    (`Held.momentum_floor`) and the lowest trend any ML samples the bar's model may add (up to three)
    give, at the latest hour."""
    p, tp = v.params, v.inputs.tp_profit
    last = list(v.tracker.ml_against)[-3:]
    if v.momentum is not None:
        return probability_floor(_trend(last), tp, v.momentum, p, v.hours_open)
    ml = v.inputs.ml_against
    trend = _trend(last) if ml is None else min(_trend(last + [ml] * k) for k in range(4))
    return probability_floor(trend, tp, v.momentum_floor, p, v.hours_open)


def _tp_probability_low(v: Held, at: At) -> Fired | None:
    assert v.momentum is not None  # a live verdict
    ml_for = [1 - x for x in v.tracker.ml_against]
    prob = tp_probability(at.profit, v.inputs.tp_profit, v.momentum, ml_for, v.hours_open)
    if prob < v.params.tp_probability_below:
        return Fired(f"TP probability {prob:.0f}% with ${at.profit:.2f}")
    return None


@rule()
def smart_take_profit(v: Held) -> Bounds:
    p, u = v.params, v.unit
    bounds: list[Bound] = [
        AtLeast(p.tp_hard_atr * u, why="hard TP: profit ${profit:.2f} ≥ {p.tp_hard_atr:.2f} ATR")
    ]
    if v.momentum_below(p.tp_momentum_below):
        bounds.append(
            AtLeast(p.tp_momentum_atr * u, why="momentum TP: ${profit:.2f} with momentum {v.momentum:.0f}")
        )
    bounds.append(
        GivesBack(
            p.tp_peak_atr * u,
            p.tp_peak_keep,
            why="peak protection: ${profit:.2f} < {p.tp_peak_keep:.0%} of peak ${peak:.2f}",
        )
    )
    top = _probability_top(v)
    if top > p.tp_probability_atr * u:
        bounds.append(Within(p.tp_probability_atr * u, top, then=_tp_probability_low))
    return tuple(bounds)


@rule()
def early_exit(v: Held) -> Bounds:
    p, u, ml = v.params, v.unit, v.inputs.ml_against
    if ml is not None and ml >= p.early_exit_ml and v.momentum_below(p.early_exit_momentum):
        why = "small profit ${profit:.2f} reversing (ML {v.inputs.ml_against:.0%} against)"
        return (Within(p.early_exit_min_atr * u, p.early_exit_max_atr * u, why=why),)
    return ()


@rule()
def early_cut(v: Held) -> Bounds:
    p = v.params
    if v.momentum_below(p.early_cut_momentum):
        limit = -(p.early_cut_loss_frac * v.max_loss)
        return (AtMost(min(_LOSS, limit), why="loss ${loss:.2f} with momentum {v.momentum:.0f}"),)
    return ()


@rule()
def ml_reversal(v: Held) -> Bounds:
    p, u, ml = v.params, v.unit, v.inputs.ml_against
    bounds: list[Bound] = []
    if ml is not None and ml >= p.reversal_ml:
        loss = max(p.reversal_loss_frac * v.max_loss, p.reversal_min_loss_atr * u)
        bounds.append(below(-loss, "ML {v.inputs.ml_against:.0%} against with loss ${loss:.2f}"))
    if v.warnings_reach(p.reversal_warnings):
        why = "{v.tracker.reversal_warnings} reversal warnings, loss ${loss:.2f}"
        bounds.append(below(-(p.reversal_warning_loss_atr * u), why))
    return tuple(bounds)


@rule(per_bar=True)
def max_loss(v: Held) -> Bounds:
    why = "loss ${loss:.2f} ≥ ${v.loss_limit:.2f} ({p.max_loss_frac:.0%} of max loss)"
    return (AtMost(-v.loss_limit, why=why),)


@rule()
def stall(v: Held) -> Bounds:
    p = v.params
    if v.tracker.stall_count >= p.stall_count_to_close:
        return (Always(why="stalled in loss for {v.tracker.stall_count} samples"),)
    if v.stalls_reach(p.stall_count_to_close):  # a sample in this loss counts a stall (`stalled`)
        return (below(-(p.stall_loss_atr * v.unit), "a stall counted"),)
    return ()


@rule(per_bar=True)
def daily_limit(v: Held) -> Bounds:
    i = v.inputs
    if i.daily_limit > 0:
        why = "today's loss ${v.inputs.daily_loss:.2f} + ${loss:.2f} reaches the limit"
        return (LossReaches(i.daily_loss, i.daily_limit, why=why),)
    return ()


@rule()
def weekend(v: Held) -> Bounds:
    p, m = v.params, v.minutes_to_weekly_close
    if m is None or m > p.weekend_minutes_before_close:
        return ()
    # a profit, or a loss smaller than weekend_small_loss_atr
    floor = min(0.0, -(p.weekend_small_loss_atr * v.unit))
    return (above(floor, "{v.minutes_to_weekly_close:.0f} min to the weekly close, P/L ${profit:.2f}"),)


@rule()
def time_limit(v: Held) -> Bounds:
    p, u, h = v.params, v.unit, v.hours_open
    if h >= p.time_hard_hours:
        return (Always(why="open {v.hours_open:.1f} h ≥ {p.time_hard_hours:g} h"),)
    bounds: list[Bound] = []
    if h >= p.time_mid_hours:
        why = "open {v.hours_open:.1f} h with ${profit:.2f}"
        if v.momentum_below(0.0):
            return (Always(why=why),)
        bounds.append(below(p.time_mid_profit_atr * u, why))
    if h >= p.time_soft_hours and not v.growing:
        bounds.append(
            below(p.time_soft_profit_atr * u, "open {v.hours_open:.1f} h, ${profit:.2f} and not growing")
        )
    return tuple(bounds)


EXIT_RULES: tuple[Rule, ...] = (
    smart_take_profit,
    early_exit,
    early_cut,
    ml_reversal,
    max_loss,
    stall,
    daily_limit,
    weekend,
    time_limit,
)


def evaluate_exits(v: Held, at: At) -> ExitVerdict | None:
    """The first rule that closes, in priority order, or None to hold."""
    hit = v.first_to_fire(EXIT_RULES, at)
    if hit is None:
        return None
    exit_rule, fired = hit
    return ExitVerdict(exit_rule.__name__, True, fired.reason)
