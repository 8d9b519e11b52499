"""A position as the backtest's quiet-tick shortcut with positions open scans a run of ticks
(`trading.quiet_ticks`): its closing prices and bands, and the compiled helpers of the scan: the
ticks steps run on, the stepped ticks that take profit samples, the best tick for the running peak,
the stepped ticks a flash-crash window keeps (and their record in it, `record_steps`), the next
sample's time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from trading.domain import Position
from trading.flash_crash import TickWindow
from trading.hold_band import Band, Closes, held_until, hold_band, scan_band, scan_scalars
from trading.parameters import StrategyParams
from trading.position_inputs import Held, PositionInputs
from trading.timezones import EPOCH, ONE_MS, at_ms
from trading.tracker import PositionTracker


@dataclass(slots=True)
class Row:
    """A position as `_OpenTake.banded` (`trading.quiet_ticks`) scans it: its closing prices and bands."""

    pos: Position
    prices: np.ndarray  # bids for a BUY, asks for a SELL
    swap: float
    mult: float  # money per price unit for its volume
    sign: float
    tracker: PositionTracker
    inputs: PositionInputs
    base: Band  # hold_band.bar_band
    view: Held  # the view `base` was folded from (`QuietTicks.bar_view`: the rules fixed for the bar)

    @property
    def buy(self) -> bool:
        return self.sign > 0  # (its prices the bids)

    def scan_row(self, band: Band) -> tuple[float, ...]:
        """The position's row of `scan_rows`' table, for `band` and the tracker's peak as it is."""
        return (
            self.buy,
            *scan_scalars(
                self.pos.open_price, self.sign, self.mult, self.swap, self.tracker.peak_profit, band
            ),
        )

    def band(
        self,
        params: StrategyParams,
        end_ms: int,
        closes: Closes,
        *,
        stretch: bool,
        momentum_floor: float = -100.0,
        stall_top: int | None = None,
    ) -> Band | None:
        """The position's hold band for the ticks up to `end_ms` (`hold_band.held_until`)."""
        view = held_until(
            self.pos,
            self.inputs,
            params,
            self.tracker,
            end_ms,
            closes,
            stretch=stretch,
            momentum_floor=momentum_floor,
            stall_top=stall_top,
        )
        return hold_band(self.base, view)


@njit(cache=True)
def step_table(
    times: np.ndarray, step_ms: int, last_step: int, first_known: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which ticks a step runs on (the first of each `step_ms`; the first tick unless `first_known`
    and in the step `last_step`), their indices and their times."""
    stepped = np.empty(times.size, dtype=np.bool_)
    steps = np.empty(times.size, dtype=np.int64)
    n, previous = 0, last_step
    for i in range(times.size):
        step = times[i] // step_ms
        stepped[i] = step != previous or (i == 0 and not first_known)
        if stepped[i]:
            steps[n] = i
            n += 1
        previous = step
    return stepped, steps[:n], times[steps[:n]]


@njit(cache=True)
def window_steps(
    steps: np.ndarray, step_times: np.ndarray, start: int, stop: int, span_ms: int
) -> tuple[int, int]:
    """The stepped ticks of [start, stop) no more than `span_ms` before the last of them (a flash-crash
    window's), as a range of `steps` (empty: none stepped)."""
    lo, hi = int(np.searchsorted(steps, start)), int(np.searchsorted(steps, stop))
    if lo == hi:
        return hi, hi
    return lo + int(np.searchsorted(step_times[lo:hi], step_times[hi - 1] - span_ms)), hi


@njit(cache=True)
def window_ticks(
    times: np.ndarray, step_ms: int, last_step: int, first_known: bool, span_ms: int
) -> np.ndarray:
    """The ticks (indices) steps run on (`step_table`) that a flash-crash window keeps after the last of
    them (`window_steps`), in one compiled call."""
    _stepped, steps, step_times = step_table(times, step_ms, last_step, first_known)
    first, end = window_steps(steps, step_times, 0, times.size, span_ms)
    return steps[first:end]


@njit(cache=True)
def due_steps(
    steps: np.ndarray, step_times: np.ndarray, prices: np.ndarray, due: float, period: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """The stepped ticks before `stop` on which the tracker takes its samples, the first at or after
    `due` (ms; -inf: the first step), each the first step a sample period after the one before; and
    their prices."""
    out = np.empty(steps.size, dtype=np.int64)
    n = 0
    k = int(np.searchsorted(step_times, due))
    while k < steps.size and steps[k] < stop:
        out[n] = steps[k]
        n += 1
        k = int(np.searchsorted(step_times, step_times[k] + period))
    return out[:n], prices[out[:n]]


@njit(cache=True)
def scan_rows(
    bids: np.ndarray, asks: np.ndarray, stepped: np.ndarray, start: int, end: int, table: np.ndarray
) -> tuple[int, np.ndarray]:
    """The first stepped tick of [start, end) some row's band does not clear (`end`: none), and each
    row's best tick before it (`best_tick`), in one call. A row of `table` per position: 1 for a BUY
    (its closing prices the bids) else 0, then `hold_band.scan_scalars`."""
    stop = end
    for r in range(table.shape[0]):
        bad = scan_band(bids if table[r, 0] else asks, stepped, start, stop, table[r, 1:])
        if bad >= 0:
            stop = bad
    best = np.empty(table.shape[0], dtype=np.int64)
    for r in range(table.shape[0]):
        best[r] = best_tick(bids if table[r, 0] else asks, stepped, start, stop, table[r, 1], table[r, 2])
    return stop, best


@njit(cache=True)
def best_tick(
    prices: np.ndarray, stepped: np.ndarray, start: int, stop: int, open_price: float, sign: float
) -> int:
    """The first stepped tick of [start, stop) with the price furthest in the position's favour (-1: none)."""
    best, best_move = -1, 0.0
    for i in range(start, stop):
        if stepped[i]:
            move = (prices[i] - open_price) * sign
            if best < 0 or move > best_move:
                best, best_move = i, move
    return best


def sample_due(tracker: PositionTracker, period_ms: int) -> int | float:
    """The first whole ms at which the tracker takes its next profit sample (`PositionTracker.observe`:
    a sample period after the last one, so rounded up should the last have been taken between two ms)."""
    if tracker.last_sample is None:
        return -math.inf
    return -((EPOCH - tracker.last_sample) // ONE_MS) + period_ms


def record_steps(
    window: TickWindow,
    times_ms: np.ndarray,
    bids: np.ndarray,
    asks: np.ndarray,
    kept: np.ndarray,
    span_ms: int,
) -> None:
    """Add the stepped ticks `kept` (indices, oldest first; those `window_steps` keeps) to the flash-crash
    window as their steps would have (`TickWindow.add`: each tick's mid, the window then cut to the span
    before the last of them)."""
    if kept.size == 0:
        return
    moments = times_ms[kept].tolist()
    # cut first: the ticks kept are all within the span, and the window then often empties at once
    window.trim(at_ms(moments[-1] - span_ms))
    for ms, bid, ask in zip(moments, bids[kept].tolist(), asks[kept].tolist(), strict=True):
        window.append(at_ms(ms), (bid + ask) / 2)
