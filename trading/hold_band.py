"""Where an open position's manager and exit rules certainly all hold, so a backtest can take the ticks
inside that region without judging each one.

Between two profit samples nothing a rule reads changes except the price, the profit, the running peak
and the clock. For that stretch `hold_band` turns every rule of `trading.position_manager` and
`trading.exits` into bounds on the profit, the price move and the peak: a `Band` (a float array, for
the compiled scan). The band is conservative: a tick it does not clear may still hold, and is then
judged by the rules themselves; a tick it clears is one on which every rule holds (tests check this
against the rules on random contexts). The rules on the clock (time limit, weekend, market close)
change phase at known instants: `clock_rules` gives what they require until the next one.

`first_unsafe` scans the stepped ticks of a stretch against a band with a margin for the rounding
of the broker's profit to cents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numba import njit

from trading.domain import Position, Side
from trading.exits import PositionTracker, momentum, tp_trend_points
from trading.parameters import StrategyParams
from trading.position_manager import stop_improves

# the band's layout: a tick is unsafe when
LO, HI = 0, 1  # profit <= LO or profit >= HI
GAP1_LO, GAP1_HI, GAP2_LO, GAP2_HI = 2, 3, 4, 5  # GAP_LO <= profit < GAP_HI
MOVE_HI = 6  # price move in the position's favour >= MOVE_HI (breakeven, trailing stop)
ARM1, KEEP1, ARM2, KEEP2 = 7, 8, 9, 10  # running peak > ARM and profit < KEEP × peak
BAND_SIZE = 11

PROFIT_MARGIN = 0.011  # the broker rounds profit to cents: the scan's profit is within 0.005 of it
STOP_MARGIN = 0.01  # a trailing stop rounded to cents moves at most 0.005


@dataclass(frozen=True, slots=True)
class BarInputs:
    """What the rules read that changes only with a new bar, risk state, balance or stop."""

    atr: float
    unit: float  # ATR money units for the position's volume
    ml_against: float | None
    regime_dangerous: bool
    urgency: int  # the position manager's urgency score (fixed within a bar)
    last_bar_range: float
    tp_profit: float | None
    balance: float
    daily_loss: float
    daily_limit: float


def empty_band() -> np.ndarray:
    band = np.full(BAND_SIZE, math.inf)
    band[LO] = -math.inf
    band[KEEP1] = band[KEEP2] = 0.0
    return band


def bar_band(pos: Position, b: BarInputs, p: StrategyParams) -> np.ndarray | None:
    """The bounds that hold for the whole bar (those that do not read the profit samples), or None
    when no band can be given (no ATR unit)."""
    u = b.unit
    if u <= 0 or not math.isfinite(u):
        return None
    band = empty_band()
    max_loss = b.balance * p.max_loss_pct / 100
    lo = -p.max_loss_frac * max_loss  # max_loss
    if b.daily_limit > 0:  # daily_limit: a loss that brings today's losses to the limit
        lo = max(lo, min(b.daily_loss - b.daily_limit, 0.0))
    if b.ml_against is not None and b.ml_against >= p.reversal_ml:  # ml_reversal, the ML branch
        lo = max(lo, -max(p.reversal_loss_frac * max_loss, p.reversal_min_loss_atr * u))
    band[LO] = lo
    hi = p.tp_hard_atr * u  # smart_take_profit, hard TP
    protect = p.pm_protect_atr * u
    if b.regime_dangerous:  # regime_danger
        hi = min(hi, protect)
    if b.ml_against is not None and b.ml_against >= p.pm_opposite_ml:  # opposite_signal
        hi = min(hi, 0.75 * protect)
    if b.urgency >= p.pm_urgency_close:  # urgency closes any profit
        hi = min(hi, 0.0)
    band[HI] = hi
    band[ARM1], band[KEEP1] = p.tp_peak_atr * u, p.tp_peak_keep  # smart_take_profit, peak protection
    band[ARM2], band[KEEP2] = protect, 1 - p.pm_peak_drawdown  # peak_drawdown
    if min(band[ARM1], band[ARM2]) <= 0:
        return None
    band[MOVE_HI] = _move_bound(pos, b, p)
    return band


def _move_bound(pos: Position, b: BarInputs, p: StrategyParams) -> float:
    """The favourable move from which breakeven or the trailing stop might move the stop."""
    if b.atr <= 0:
        return math.inf
    bound = math.inf
    sign = pos.side.sign
    if pos.sl > 0 and stop_improves(pos, round(pos.open_price + sign * p.breakeven_buffer_atr * b.atr, 2)):
        bound = p.breakeven_atr * b.atr
    step = p.trail_step_atr * b.atr
    if b.last_bar_range > p.impulse_range_atr * b.atr:
        step = min(step, p.impulse_step_atr * b.atr)
    trail = p.trail_start_atr * b.atr
    if pos.side is Side.BUY or pos.sl > 0:  # else (a SELL with no stop) any trail improves it
        trail = max(trail, (pos.sl - pos.open_price) * sign + step - STOP_MARGIN)
    return min(bound, trail)


def sample_band(
    base: np.ndarray,
    tracker: PositionTracker,
    b: BarInputs,
    p: StrategyParams,
    hours_end: float,
    clock: ClockRules | None = None,
) -> np.ndarray | None:
    """`base` narrowed by what reads the profit samples (momentum, warnings, the stall count), valid
    until the next sample and up to `hours_end` hours open; None when a rule would close anyway."""
    if tracker.stall_count >= p.stall_count_to_close:
        return None
    u = b.unit
    mom = momentum(tracker.profits, p.momentum_scale_atr * u)
    band = base.copy()
    max_loss = b.balance * p.max_loss_pct / 100
    if mom < p.early_cut_momentum:  # early_cut
        band[LO] = max(band[LO], -p.early_cut_loss_frac * max_loss)
    if tracker.reversal_warnings >= p.reversal_warnings:  # ml_reversal, the warnings branch
        band[LO] = max(band[LO], -p.reversal_warning_loss_atr * u)
    if mom < p.tp_momentum_below:  # smart_take_profit, momentum TP
        band[HI] = min(band[HI], p.tp_momentum_atr * u)
    if b.ml_against is not None and b.ml_against >= p.early_exit_ml and mom < p.early_exit_momentum:
        band[GAP1_LO], band[GAP1_HI] = p.early_exit_min_atr * u, p.early_exit_max_atr * u  # early_exit
    gap_hi = _probability_floor(tracker.ml_against, b.tp_profit, mom, p, hours_end)
    if gap_hi > p.tp_probability_atr * u:  # smart_take_profit, TP probability
        band[GAP2_LO], band[GAP2_HI] = p.tp_probability_atr * u, gap_hi
    if clock is None:
        return band
    profits = tracker.profits
    return _with_clock(band, clock, len(profits) >= 2 and profits[-1] > profits[-2], mom)


def stretch_band(
    base: np.ndarray,
    tracker: PositionTracker,
    b: BarInputs,
    p: StrategyParams,
    hours_end: float,
    clock: ClockRules | None = None,
) -> np.ndarray | None:
    """`base` narrowed for any profit samples the tracker may take up to `hours_end` hours open: the
    worst momentum, every reversal warning and stall it could count. Looser than `sample_band` but
    valid across samples, so a whole stretch is scanned at once; None when a rule would close anyway."""
    if tracker.stall_count >= p.stall_count_to_close:
        return None
    u = b.unit
    band = base.copy()
    max_loss = b.balance * p.max_loss_pct / 100
    lo = max(band[LO], -p.early_cut_loss_frac * max_loss, -p.stall_loss_atr * u)  # early_cut, stall
    warned = b.ml_against is not None and b.ml_against >= p.early_exit_ml
    if warned or tracker.reversal_warnings >= p.reversal_warnings:  # ml_reversal, the warnings branch
        lo = max(lo, -p.reversal_warning_loss_atr * u)
    band[LO] = lo
    band[HI] = min(band[HI], p.tp_momentum_atr * u)  # momentum TP
    if warned:
        band[GAP1_LO], band[GAP1_HI] = p.early_exit_min_atr * u, p.early_exit_max_atr * u  # early_exit
    history = list(tracker.ml_against)
    futures = [history] if b.ml_against is None else [history + [b.ml_against] * k for k in range(4)]
    gap_hi = max(_probability_floor(h, b.tp_profit, -100.0, p, hours_end) for h in futures)
    if gap_hi > p.tp_probability_atr * u:
        band[GAP2_LO], band[GAP2_HI] = p.tp_probability_atr * u, gap_hi
    return band if clock is None else _with_clock(band, clock, None, None)


def _probability_floor(
    ml_against: Sequence[float], tp_profit: float | None, mom: float, p: StrategyParams, hours: float
) -> float:
    """The profit from which `tp_probability` is at least `tp_probability_below` (the score rises
    with the profit and falls with the hours open, so the latest hour of the stretch is used)."""
    below = p.tp_probability_below
    if below <= 0:
        return -math.inf
    if not tp_profit or tp_profit <= 0:  # the score is 50 without a TP
        return math.inf if below > 50.0 else -math.inf
    if below > 100:
        return math.inf
    rest = (mom + 100) / 200 * 30 + tp_trend_points([1 - x for x in ml_against]) - min(10.0, 2 * hours)
    need = below - rest + 1e-9  # what min(40, 0.4 × progress) must reach
    if need <= 0:
        return -math.inf
    if need >= 40:
        return math.inf
    return need * tp_profit / 40


@dataclass(frozen=True, slots=True)
class ClockRules:
    """What the rules on the clock (time limit, weekend exit, market-close handler) require of the
    profit from `start_ms` until `until_ms`, a stretch in which none of them changes phase."""

    until_ms: float  # ms since the epoch (exclusive)
    lo: float = -math.inf  # profit <= lo might close
    hi: float = math.inf  # profit >= hi might close
    soft_lo: float = -math.inf  # time limit, soft: profit <= soft_lo might close unless the profits grow
    mid: bool = False  # time limit, mid: a negative momentum closes
    closes: bool = False  # a rule may close whatever the profit


def clock_rules(
    pos: Position,
    p: StrategyParams,
    unit: float,
    now_ms: int,
    minutes_to_daily: float | None,
    minutes_to_weekly: float | None,
) -> ClockRules | None:
    """The rules on the clock from `now_ms` to their next change of phase (None: the closes unknown).
    A phase is taken as begun a minute early (the close handler reads minutes to the closes)."""
    if minutes_to_daily is None or minutes_to_weekly is None:
        return None
    open_ms = int(pos.open_time.timestamp() * 1000)
    daily_at, weekly_at = now_ms + minutes_to_daily * 60_000, now_ms + minutes_to_weekly * 60_000
    near, last = p.close_near_hours * 3_600_000, p.close_last_minutes * 60_000
    edges = {  # the instant a phase begins, less the margin it is taken early by
        "soft": open_ms + p.time_soft_hours * 3_600_000 - 1_000,
        "mid": open_ms + p.time_mid_hours * 3_600_000 - 1_000,
        "hard": open_ms + p.time_hard_hours * 3_600_000 - 1_000,
        "near_daily": daily_at - near - 60_000,
        "last_daily": daily_at - last - 60_000,
        "daily": daily_at - 60_000,
        "near_weekly": weekly_at - near - 60_000,
        "last_weekly": weekly_at - last - 60_000,
        "weekend": weekly_at - p.weekend_minutes_before_close * 60_000 - 60_000,
        "weekly": weekly_at - 60_000,
    }
    on = {name for name, at in edges.items() if now_ms >= at}
    until = min((at for name, at in edges.items() if name not in on), default=math.inf)
    if on & {"hard", "weekend", "daily", "weekly"}:
        return ClockRules(until, closes=True)
    lo, hi = -math.inf, math.inf
    if on & {"near_daily", "near_weekly"}:  # the market-close handler
        hi = p.close_min_profit_atr * unit
        lo = (
            0.0 if "near_weekly" in on else -p.close_max_hold_loss_atr * unit
        )  # a weekend loss by the stop's %
        if on & {"last_daily", "last_weekly"}:
            hi = 0.0
    mid = "mid" in on
    if mid:
        lo = max(lo, p.time_mid_profit_atr * unit)
    soft_lo = p.time_soft_profit_atr * unit if "soft" in on else -math.inf
    return ClockRules(until, lo=lo, hi=hi, soft_lo=soft_lo, mid=mid)


def _with_clock(
    band: np.ndarray, clock: ClockRules, growing: bool | None, mom: float | None
) -> np.ndarray | None:
    """`band` narrowed by `clock`; `growing`/`mom` None: any the samples may bring (the worst)."""
    if clock.closes or (clock.mid and (mom is None or mom < 0)):
        return None
    band[LO] = max(band[LO], clock.lo, clock.soft_lo if not growing else -math.inf)
    band[HI] = min(band[HI], clock.hi)
    return band


def hours_between(open_time: datetime, now_ms: int) -> float:
    return (now_ms / 1000 - open_time.timestamp()) / 3600


@njit(cache=True)
def first_unsafe(
    prices: np.ndarray,
    stepped: np.ndarray,
    start: int,
    end: int,
    open_price: float,
    sign: float,
    money_per_unit: float,
    swap: float,
    peak: float,
    band: np.ndarray,
) -> int:
    """The first stepped tick in [start, end) the band does not clear (-1: none)."""
    eps = PROFIT_MARGIN
    for i in range(start, end):
        if not stepped[i]:
            continue
        move = (prices[i] - open_price) * sign
        profit = move * money_per_unit + swap
        if profit > peak:
            peak = profit
        top = peak + eps
        if (
            profit <= band[0] + eps
            or profit >= band[1] - eps
            or (band[2] - eps <= profit < band[3] + eps)
            or (band[4] - eps <= profit < band[5] + eps)
            or move >= band[6] - 1e-9
            or (top > band[7] and profit - eps < band[8] * top)
            or (top > band[9] and profit - eps < band[10] * top)
        ):
            return i
    return -1
