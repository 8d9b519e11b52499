"""A position's memory between ticks, for the exit rules: profit samples taken every
`profit_sample_seconds`, the peak, ML samples, reversal warnings and the stall counter.

Rebuilt after a restart from the next samples. `momentum` and `stalled` are what the rules read of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from trading.parameters import StrategyParams


@dataclass(slots=True)
class PositionTracker:
    """Per-ticket memory of a position between ticks (rebuilt after a restart from the next samples)."""

    ticket: int
    profits: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    ml_against: deque[float] = field(default_factory=lambda: deque(maxlen=10))
    peak_profit: float = 0.0
    reversal_warnings: int = 0
    stall_count: int = 0
    last_sample: datetime | None = None

    def observe(
        self, profit: float, now: datetime, ml_against: float | None, params: StrategyParams, unit: float
    ) -> None:
        """Take a sample when the sample period has passed; update peak, warnings and stall count."""
        self.peak_profit = max(self.peak_profit, profit)
        due = (
            self.last_sample is None
            or (now - self.last_sample).total_seconds() >= params.profit_sample_seconds
        )
        if not due:
            return
        self.last_sample = now
        self._sample(profit, ml_against, params, unit)

    def take_samples(
        self,
        profits: list[float],
        last: datetime,
        ml_against: float | None,
        params: StrategyParams,
        unit: float,
    ) -> None:
        """The samples `observe` takes on the ticks it finds due, in one go: their profits in order,
        `last` the time of the last one (the backtest's shortcuts, `trading.quiet_ticks`)."""
        if not profits:
            return
        self.last_sample = last
        if ml_against is None and none_may_stall(profits, params, unit):
            # no sample counts a warning (no model) or a stall (`stalled`: none in a loss beyond the
            # floor), each sets the count back to 0: the samples kept and the peak raised at once
            self.peak_profit = max(self.peak_profit, *profits)
            self.profits.extend(profits)
            self.stall_count = 0
            return
        for profit in profits:
            self.peak_profit = max(self.peak_profit, profit)
            self._sample(profit, ml_against, params, unit)

    def _sample(self, profit: float, ml_against: float | None, params: StrategyParams, unit: float) -> None:
        self.profits.append(profit)
        if ml_against is not None:
            self.ml_against.append(ml_against)
            if warns(ml_against, params) and profit < 0:
                self.reversal_warnings += 1
            elif ml_against < 0.5:
                self.reversal_warnings = 0
        self.stall_count = next_stall_count(self.stall_count, self.profits, profit, params, unit)


def warns(ml_against: float, params: StrategyParams) -> bool:
    """Whether a sample with the model this sure of the other side counts a reversal warning (in a loss)."""
    return ml_against >= params.early_exit_ml


def momentum(profits: deque[float] | list[float], scale: float) -> float:
    """clamp((p[-1] - p[-5]) / scale × 50, ±100) over the last ≤ 5 samples; 0 with fewer than 3."""
    n = len(profits)
    if n < 3 or scale <= 0:
        return 0.0
    first = profits[-5] if n >= 5 else profits[0]  # (the deque indexed, not copied, on every step)
    return momentum_of(profits[-1] - first, scale)


def momentum_of(change: float, scale: float) -> float:
    """`momentum` of samples whose profit changed by `change` (scale > 0): it never falls as the
    change rises (a division and a product by positive numbers, then a clamp)."""
    return max(-100.0, min(100.0, change / scale * 50))


def lowest_momentum(profits: deque[float], more: list[float], scale: float) -> float:
    """The lowest `momentum` of the samples `profits` as they are and as each of `more` is taken."""
    if scale <= 0:
        return 0.0
    recent = list(profits)[-5:]  # all that `momentum` reads of them
    known = len(recent)
    recent.extend(more)
    # the first n samples' change (n >= 3: with fewer the momentum is 0), from the fifth last or the
    # first; the lowest momentum is that of the least change (`momentum_of` never falls as it rises)
    changes = [recent[n - 1] - recent[max(0, n - 5)] for n in range(max(known, 3), len(recent) + 1)]
    lowest = momentum_of(min(changes), scale) if changes else 0.0
    return min(0.0, lowest) if known < 3 else lowest


def next_stall_count(
    count: int, profits: deque[float], profit: float, params: StrategyParams, unit: float
) -> int:
    """The stall count once the sample `profit` is taken (`profits` with it): one more while stalled."""
    return count + 1 if stalled(profits, profit, params, unit) else 0


def highest_stall_count(
    tracker: PositionTracker, more: list[float], params: StrategyParams, unit: float
) -> int:
    """The highest stall count of the tracker as it is and as each of the samples `more` is taken."""
    count = top = tracker.stall_count
    if none_may_stall(more, params, unit):  # each sets the count back to 0
        return top
    profits = deque(tracker.profits, maxlen=tracker.profits.maxlen)
    for profit in more:
        profits.append(profit)
        count = next_stall_count(count, profits, profit, params, unit)
        top = max(top, count)
    return top


def stalled(profits: deque[float], profit: float, params: StrategyParams, unit: float) -> bool:
    """The last `stall_samples` samples within `stall_range_atr` while in a loss beyond `stall_loss_atr`."""
    if len(profits) < params.stall_samples or not profit < stall_loss(params, unit):
        return False
    last = list(profits)[-params.stall_samples :]
    return max(last) - min(last) < params.stall_range_atr * unit


def none_may_stall(profits: list[float], params: StrategyParams, unit: float) -> bool:
    """No sample of `profits` is in a loss beyond the stall floor: none can count a stall (`stalled`)."""
    return not min(profits, default=0.0) < stall_loss(params, unit)


def stall_loss(params: StrategyParams, unit: float) -> float:
    """The profit below which a sample may count a stall (`stalled`: a loss beyond `stall_loss_atr`)."""
    return -params.stall_loss_atr * unit
