"""Where an open position's manager and exit rules certainly all hold, so a backtest can take the ticks
inside that region without judging each one.

Every rule declares the bounds it acts on (`trading.bounds`); `fold` folds the declarations of all the
rules into a `Band`, by kind of bound, for the compiled scan `scan_band`. Nothing here knows a rule.
The band is conservative: a tick it does not clear may still hold, and is then judged by the rules
themselves; a tick it clears is one on which every rule holds (tests check this against the rules on
random views). Bounds that read only the bar's inputs and the stop are folded once a bar (`bar_band`),
the others on each view (`hold_band`): for one sample period (`Held.stretch` False) or for a stretch
across samples (True), with the clock at the stretch's latest tick (the rules on the clock only
tighten as it runs) and cut a minute before the next daily or weekly close (where the minutes jump).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
from numba import njit

import trading.exits as exits
import trading.position_manager as position_manager
from trading.bounds import (
    Always,
    At,
    AtLeast,
    AtMost,
    Bound,
    DrawsDown,
    GivesBack,
    LossReaches,
    MoveAtLeast,
    Rule,
    Within,
    first_fired,
)
from trading.domain import Position
from trading.parameters import StrategyParams
from trading.position_inputs import Held, PositionInputs
from trading.tracker import PositionTracker, momentum

PROFIT_MARGIN = 0.011  # the broker rounds profit to cents: the scan's profit is within 0.005 of it
HOURS_MARGIN_MS = 1_000  # the clock's hours open are taken a second late,
MINUTES_MARGIN_MS = 60_000  # its minutes to the closes a minute late (they are read to the minute)


class Band(NamedTuple):
    """A tick is unsafe when profit <= lo or profit >= hi, or gap_lo <= profit < gap_hi, or the price
    moved move_hi or more in the position's favour, or the running peak is above arm and the profit
    under keep × peak."""

    lo: float = -math.inf
    hi: float = math.inf
    gap1_lo: float = math.inf
    gap1_hi: float = math.inf
    gap2_lo: float = math.inf
    gap2_hi: float = math.inf
    move_hi: float = math.inf
    arm1: float = math.inf
    keep1: float = 0.0
    arm2: float = math.inf
    keep2: float = 0.0


OPEN = Band()  # no bound: every tick clears


_split: tuple[object, object, tuple[Rule, ...], tuple[Rule, ...]] | None = None


def split_rules() -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """The position manager's rules and the exits (as `trading.position_watch` judges them): those
    fixed for the bar, and the others. Each must be a `trading.bounds.Rule`."""
    global _split
    pm, ex = position_manager.PM_RULES, exits.EXIT_RULES
    if _split is None or _split[0] is not pm or _split[1] is not ex:
        rules = (*pm, *ex)
        for r in rules:
            if not isinstance(r, Rule):
                raise TypeError(
                    f"{r!r} declares no bounds: every exit and manager rule is a trading.bounds.Rule"
                )
        per_bar = tuple(r for r in rules if r.per_bar)
        _split = (pm, ex, per_bar, tuple(r for r in rules if not r.per_bar))
    return _split[2], _split[3]


def declared(v: Held, *, per_bar: bool | None = None) -> list[Bound]:
    """The bounds the rules declare for the view (only those fixed for the bar or not, when given)."""
    fixed, other = split_rules()
    bounds: list[Bound] = []
    if per_bar is not False:
        for r in fixed:
            bounds.extend(v.declare(r))  # kept with the bar's inputs for the live verdicts too
    if per_bar is not True:
        for r in other:
            bounds.extend(r.declare(v))
    return bounds


def fold(bounds: Iterable[Bound], band: Band = OPEN) -> Band | None:
    """`band` narrowed by the bounds, by kind; None when one fires whatever the price."""
    lo, hi, g1lo, g1hi, g2lo, g2hi, move, arm1, keep1, arm2, keep2 = band
    for b in bounds:
        match b:
            case AtMost():
                lo = max(lo, b.x)
            case LossReaches():
                lo = max(lo, min(b.spent - b.limit, 0.0))
            case AtLeast():
                hi = min(hi, b.x)
            case Within():
                if b.lo >= b.hi:
                    continue
                if g1lo == math.inf:
                    g1lo, g1hi = b.lo, b.hi
                elif g2lo == math.inf:
                    g2lo, g2hi = b.lo, b.hi
                else:  # more gaps than slots: the hull covers both
                    g2lo, g2hi = min(g2lo, b.lo), max(g2hi, b.hi)
            case MoveAtLeast():
                move = min(move, b.x)
            case GivesBack() | DrawsDown():
                if arm1 == math.inf:
                    arm1, keep1 = b.arm, b.keep
                elif arm2 == math.inf:
                    arm2, keep2 = b.arm, b.keep
                else:
                    arm2, keep2 = min(arm2, b.arm), max(keep2, b.keep)
            case Always():
                return None
            case _:
                raise TypeError(f"no band for a bound of kind {type(b).__name__}")
    return Band(lo, hi, g1lo, g1hi, g2lo, g2hi, move, arm1, keep1, arm2, keep2)


def stop_moves(v: Held, at: At) -> bool:
    """Whether a rule fixed for the bar that moves the stop (breakeven, the trailing stop) acts on the
    tick, judged by its own declaration as the position manager judges it: the manager then does not
    hold (it or a rule before it acts). `v` any view of the bar's inputs and stop."""
    return any(r.moves_stop and first_fired(v.declare(r), v, at) is not None for r in split_rules()[0])


def bar_band(v: Held) -> Band | None:
    """The bounds of the rules fixed for the bar (any view of the bar's inputs and stop), or None when
    no band can be given (no ATR unit)."""
    u = v.unit
    if u <= 0 or not math.isfinite(u):
        return None
    band = fold(declared(v, per_bar=True))
    if band is None or min(band.arm1, band.arm2) <= 0:
        return None
    return band


def hold_band(base: Band, v: Held) -> Band | None:
    """`base` (`bar_band`) narrowed by the other rules' bounds for the view; None when one would close
    whatever the price."""
    band = fold(declared(v, per_bar=False), base)
    if band is None or min(band.arm1, band.arm2) <= 0:
        return None
    return band


@dataclass(frozen=True, slots=True)
class Closes:
    """The next daily and weekly close (ms since the epoch), as the market clock read them."""

    daily_ms: float
    weekly_ms: float

    @classmethod
    def seen(
        cls, now_ms: int, minutes_to_daily: float | None, minutes_to_weekly: float | None
    ) -> Closes | None:
        if minutes_to_daily is None or minutes_to_weekly is None:
            return None
        return cls(now_ms + minutes_to_daily * 60_000, now_ms + minutes_to_weekly * 60_000)

    @property
    def until_ms(self) -> float:
        """Bands hold until a minute before the nearer close (the minutes to it jump there)."""
        return min(self.daily_ms, self.weekly_ms) - MINUTES_MARGIN_MS


def held_until(
    pos: Position,
    inputs: PositionInputs,
    params: StrategyParams,
    tracker: PositionTracker,
    end_ms: int,
    closes: Closes,
    *,
    stretch: bool,
    momentum_floor: float = -100.0,
    stall_top: int | None = None,
) -> Held:
    """The rules' view for the ticks up to `end_ms` (before `closes.until_ms`): the clock at that last
    tick (with its margins), the tracker as it is (`stretch` False: no sample is taken before
    `end_ms`) or any samples it may take (`stretch` True), whose momentum stays at or above
    `momentum_floor` (-100: any) and stall count at or below `stall_top` (None: any)."""
    at = end_ms + MINUTES_MARGIN_MS
    profits = tracker.profits
    return Held(
        position=pos,
        inputs=inputs,
        params=params,
        tracker=tracker,
        hours_open=hours_between(pos.open_time, end_ms + HOURS_MARGIN_MS),
        minutes_to_daily_close=(closes.daily_ms - at) / 60_000,
        minutes_to_weekly_close=(closes.weekly_ms - at) / 60_000,
        momentum=None if stretch else momentum(profits, params.momentum_scale_atr * inputs.unit),
        growing=None if stretch else len(profits) >= 2 and profits[-1] > profits[-2],
        stretch=stretch,
        momentum_floor=momentum_floor,
        stall_top=stall_top,
    )


def hours_between(open_time: datetime, now_ms: int) -> float:
    return (now_ms / 1000 - open_time.timestamp()) / 3600


def scan_scalars(
    open_price: float, sign: float, money_per_unit: float, swap: float, peak: float, band: Band
) -> tuple[float, ...]:
    """`scan_band`'s scalars for a position and its band, in the order it reads them (one array: numba's
    dispatch takes one array far faster than sixteen floats). `peak`: the running peak profit before
    the scan's first tick."""
    return (open_price, sign, money_per_unit, swap, peak, *band)


@njit(cache=True)
def scan_band(prices: np.ndarray, stepped: np.ndarray, start: int, end: int, scalars: np.ndarray) -> int:
    """The first stepped tick in [start, end) the band does not clear (-1: none), with a margin for the
    rounding of the broker's profit to cents; `scalars` as `scan_scalars` gives them."""
    open_price, sign, money_per_unit, swap, peak = scalars[0], scalars[1], scalars[2], scalars[3], scalars[4]
    lo, hi, gap1_lo, gap1_hi = scalars[5], scalars[6], scalars[7], scalars[8]
    gap2_lo, gap2_hi, move_hi = scalars[9], scalars[10], scalars[11]
    arm1, keep1, arm2, keep2 = scalars[12], scalars[13], scalars[14], scalars[15]
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
            profit <= lo + eps
            or profit >= hi - eps
            or (gap1_lo - eps <= profit < gap1_hi + eps)
            or (gap2_lo - eps <= profit < gap2_hi + eps)
            or move >= move_hi - 1e-9
            or (top > arm1 and profit - eps < keep1 * top)
            or (top > arm2 and profit - eps < keep2 * top)
        ):
            return i
    return -1
