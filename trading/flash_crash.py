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
    if not prices:
        return 0.0
    return _move(len(prices), min(prices), max(prices))


def _move(count: int, lo: float, hi: float) -> float:
    """`move_pct` of `count` prices whose low and high are `lo` and `hi`."""
    if count < 2:
        return 0.0
    return _range_pct(lo, hi) if lo > 0 else 0.0


class TickWindow:
    """The (time, mid) of the stepped ticks within the guard's window, oldest first, and the window's
    low and high kept as ticks come and go (the live step reads the move every second, over a minute
    of ticks): `_lows` holds the ticks no later tick is at or under (rising: the low first), `_highs`
    those no later tick is at or over, each by its number in the sequence of ticks appended."""

    __slots__ = ("_first", "_highs", "_lows", "_next", "_span", "ticks")

    def __init__(self) -> None:
        self.ticks: deque[tuple[datetime, float]] = deque()  # read it; change it only by these methods
        self._lows: deque[tuple[int, float]] = deque()
        self._highs: deque[tuple[int, float]] = deque()
        self._next = 0  # the number the next tick appended takes
        self._first = 0  # the number of the oldest tick kept
        self._span = (0.0, timedelta(0))  # the window's length in seconds, and as a timedelta (`add`)

    def __len__(self) -> int:
        return len(self.ticks)

    def append(self, moment: datetime, mid: float) -> None:
        self.ticks.append((moment, mid))
        number = self._next
        self._next = number + 1
        lows, highs = self._lows, self._highs
        while lows and lows[-1][1] >= mid:
            lows.pop()
        lows.append((number, mid))
        while highs and highs[-1][1] <= mid:
            highs.pop()
        highs.append((number, mid))

    def trim(self, horizon: datetime) -> None:
        """Drop the ticks before `horizon`."""
        ticks = self.ticks
        if ticks and ticks[-1][0] < horizon:  # all of them (a replay's quiet stretch passed the window)
            self.clear()
            return
        dropped = 0
        while ticks and ticks[0][0] < horizon:
            ticks.popleft()
            dropped += 1
        if dropped:
            self._first += dropped
            first, lows, highs = self._first, self._lows, self._highs
            while lows and lows[0][0] < first:
                lows.popleft()
            while highs and highs[0][0] < first:
                highs.popleft()

    def add(self, moment: datetime, mid: float, seconds: float) -> None:
        """A stepped tick: kept, and the window cut to the `seconds` before it."""
        self.append(moment, mid)
        if seconds != self._span[0]:
            self._span = (seconds, timedelta(seconds=seconds))
        self.trim(moment - self._span[1])

    def clear(self) -> None:
        self.ticks.clear()
        self._lows.clear()
        self._highs.clear()
        self._first = self._next

    def move_pct(self) -> float:
        """The guard's move over the window."""
        if not self.ticks:
            return 0.0
        return _move(len(self.ticks), self._lows[0][1], self._highs[0][1])

    def move_with(self, mid: float, horizon: datetime) -> float:
        """The move the window would show with a tick at `mid` added and the ticks before `horizon`
        dropped (`add`), leaving it as it is."""
        prices = [p for t, p in self.ticks if t >= horizon]
        prices.append(mid)
        return move_pct(prices)

    def could_reach(self, bids: np.ndarray, asks: np.ndarray, pct: float) -> bool:
        """Whether the guard's move could reach `pct` on some tick of these quotes (the window as it is
        and all of their mids taken as one: conservative, so False means no tick of them can trigger it)."""
        lo, hi = _mid_low_high(bids, asks)
        if self.ticks:
            lo, hi = min(lo, self._lows[0][1]), max(hi, self._highs[0][1])
        return lo <= 0 or _range_pct(lo, hi) >= pct


@njit(cache=True)
def _mid_low_high(bids: np.ndarray, asks: np.ndarray) -> tuple[float, float]:
    """The low and high of the quotes' mids (`(bid + ask) / 2`, as a tick's `mid`) in one compiled call
    (numpy's arithmetic and reductions cost microseconds each on the few dozen quotes of a bar's rest,
    asked about several times a bar)."""
    lo = hi = (bids[0] + asks[0]) / 2
    for i in range(1, bids.size):
        mid = (bids[i] + asks[i]) / 2
        lo, hi = min(lo, mid), max(hi, mid)
    return lo, hi
