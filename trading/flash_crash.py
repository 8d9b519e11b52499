"""The flash-crash guard's tick window: the mid prices of the stepped ticks of the last
`flash_crash_window_seconds`, and the one move the guard measures on them (range over low, in %).

The live step adds its tick and reads the move; the backtest's shortcuts (`trading.quiet_ticks`) ask
the same window whether a tick, or any of a run of ticks, could reach the guard's threshold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
from numba import njit


def _range_pct(lo: float, hi: float) -> float:
    """The guard's move: the range over the low, in percent (the low is > 0)."""
    return (hi - lo) / lo * 100


def move_pct(prices: Iterable[float]) -> float:
    """The guard's move over `prices`; 0 with fewer than two prices or a low at or under 0."""
    prices = list(prices)
    if len(prices) < 2:
        return 0.0
    lo = min(prices)
    return _range_pct(lo, max(prices)) if lo > 0 else 0.0


class TickWindow:
    """The (time, mid) of the stepped ticks within the guard's window, oldest first."""

    __slots__ = ("_span", "ticks")

    def __init__(self) -> None:
        self.ticks: deque[tuple[datetime, float]] = deque()
        self._span = (0.0, timedelta(0))  # the window's length in seconds, and as a timedelta (`add`)

    def __len__(self) -> int:
        return len(self.ticks)

    def append(self, moment: datetime, mid: float) -> None:
        self.ticks.append((moment, mid))

    def trim(self, horizon: datetime) -> None:
        """Drop the ticks before `horizon`."""
        ticks = self.ticks
        while ticks and ticks[0][0] < horizon:
            ticks.popleft()

    def add(self, moment: datetime, mid: float, seconds: float) -> None:
        """A stepped tick: kept, and the window cut to the `seconds` before it."""
        self.ticks.append((moment, mid))
        if seconds != self._span[0]:
            self._span = (seconds, timedelta(seconds=seconds))
        self.trim(moment - self._span[1])

    def clear(self) -> None:
        self.ticks.clear()

    def move_pct(self) -> float:
        """The guard's move over the window."""
        return move_pct([p for _, p in self.ticks])

    def move_with(self, mid: float, horizon: datetime) -> float:
        """The move the window would show with a tick at `mid` added and the ticks before `horizon`
        dropped (`add`), leaving it as it is."""
        prices = [p for t, p in self.ticks if t >= horizon]
        prices.append(mid)
        return move_pct(prices)

    def could_reach(self, mids: np.ndarray, pct: float) -> bool:
        """Whether the guard's move could reach `pct` on some tick of `mids` (the window as it is and all
        of `mids` taken as one: conservative, so False means no tick of them can trigger it)."""
        lo, hi = _low_high(mids)
        if self.ticks:
            window = [p for _, p in self.ticks]
            lo, hi = min(lo, min(window)), max(hi, max(window))
        return lo <= 0 or _range_pct(lo, hi) >= pct


@njit(cache=True)
def _low_high(prices: np.ndarray) -> tuple[float, float]:
    """`prices.min(), prices.max()` in one compiled call (numpy's reductions cost microseconds each on
    the few dozen prices of a bar's rest, asked about several times a bar)."""
    return prices.min(), prices.max()
