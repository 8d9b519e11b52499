"""Intrabar modes: the ticks inside each M15 bar, named like MetaTrader 5's Strategy Tester.

- `real ticks` (`RealTicks`): the broker's own ticks (time_msc, bid, ask), as `copy_ticks_range` returns them;
- `M1 detail` (`M1Detail`): each minute of the bar walked open -> nearer extreme -> other extreme -> close,
  4 ticks a minute at 0, 15, 30 and 45 s, each minute with its own spread;
- `generated` (`GeneratedPath`): the M15 bar alone, `ticks_per_bar` prices evenly spaced in time
  (the default: 60, one every 15 s) along open -> low -> high -> close for a rising bar and open ->
  high -> low -> close for a falling one (MT5's convention; measured against a 1-second synthetic
  truth it agrees with it on more bracket orders than "nearer extreme first": README, bench/intrabar.py).

A bar the finer data does not cover falls back to the generated path; `detail_share()` says how many
bars had real detail. `segment_ticks(bar)` says how many ticks of the bar make one continuous walk (the
whole generated bar, each M1 minute, 1 for real ticks): a level passed between two ticks of one walk was
crossed (a stop fills at its level), one reached by a walk's first tick was jumped (it fills at that tick). Every path returns, for bar `i`, tick times as int64 milliseconds since the
epoch (UTC) and bid/ask prices; every tick lies inside [bar open, bar close).

The loaders (`load_ticks`, `load_detail`, in `trading.intrabar_files`) refuse a file that does not cover
the bars (naming the days), has out-of-order or duplicate rows, or whose clock is offset from the bars'
(they detect the offset): one `IntrabarDataError` line each, and nothing is loaded. How close each mode
comes to a 1-second truth is scored by `trading.intrabar_fidelity`. Both are re-exported here.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trading.broker.intrabar import price_path
from trading.intrabar_fidelity import BracketScore, bracket_outcomes, score_paths, walk_all
from trading.intrabar_files import detect_offset_hours, load_detail, load_ticks, missing_days
from trading.synthetic_ticks import (
    SyntheticTruth,
    as_server_ticks,
    resample_bars,
    synthetic_truth,
    ticks_to_m1,
)
from trading.tick_path import (
    BAR_MS,
    IntrabarDataError,
    TickArrays,
    TickPath,
    bar_open_ms,
)

DEFAULT_TICKS_PER_BAR = 60


class GeneratedPath:
    """`ticks_per_bar` prices along the bar's O -> H/L -> C path, evenly spaced over the bar.

    The path is walked for `CHUNK_BARS` bars at a time, when a bar of the chunk is first asked for
    (one chunk is kept: memory does not grow with the file)."""

    mode = "generated"

    def __init__(
        self,
        bars: pl.DataFrame,
        ticks_per_bar: int = DEFAULT_TICKS_PER_BAR,
        *,
        point: float = 0.01,
        digits: int = 2,
        bar_ms: int = BAR_MS,
        order: str = "direction",
    ) -> None:
        if ticks_per_bar < 4:
            raise ValueError(
                f"ticks_per_bar must be at least 4 (open, high, low, close), got {ticks_per_bar}"
            )
        if order not in ("nearer", "direction"):
            raise ValueError(f"order must be 'nearer' or 'direction', got {order!r}")
        self.ticks_per_bar = ticks_per_bar
        self.order = order
        self._open_ms = bar_open_ms(bars)
        self._ohlc = bars.select("open", "high", "low", "close").to_numpy().astype(np.float64)
        self._spread = bars["spread"].to_numpy().astype(np.float64) * point
        self._digits = digits
        self._offsets = (np.arange(ticks_per_bar, dtype=np.int64) * bar_ms) // ticks_per_bar
        self._chunk: int | None = None
        self._rows: TickArrays = (np.empty((0, 0), np.int64), np.empty((0, 0)), np.empty((0, 0)))

    def ticks(self, bar: int) -> TickArrays:
        chunk, row = divmod(bar, CHUNK_BARS)
        if chunk != self._chunk:
            if not 0 <= bar < self._open_ms.size:
                raise IndexError(f"bar {bar} out of range for {self._open_ms.size} bars")
            self._rows = self._walk_chunk(chunk * CHUNK_BARS, (chunk + 1) * CHUNK_BARS)
            self._chunk = chunk
        times, bid, ask = self._rows
        return times[row], bid[row], ask[row]

    def _walk_chunk(self, first: int, last: int) -> TickArrays:
        ohlc = self._ohlc[first:last]
        bid = walk_paths(path_vertices(ohlc, self.order), self.ticks_per_bar, self._digits)
        ask = np.round(bid + self._spread[first:last, None], self._digits)
        times = self._open_ms[first:last, None] + self._offsets[None, :]
        for a in (times, bid, ask):
            a.flags.writeable = False  # rows are handed out as views: nobody may change the chunk
        return times, bid, ask

    def detail_share(self) -> float:
        return 0.0

    def counts(self) -> np.ndarray:
        return np.full(self._open_ms.size, self.ticks_per_bar, dtype=np.int64)

    def segment_ticks(self, bar: int) -> int:
        return self.ticks_per_bar  # the bar is one walk; only its open may gap


CHUNK_BARS = 1024


def path_vertices(ohlc: np.ndarray, order: str = "direction") -> np.ndarray:
    """The four vertices of each bar's path (rows of open, high, low, close). "direction" is MT5's
    tester (a rising bar visits its low first, a falling one its high); "nearer" goes to the nearer
    extreme first (`trading.broker.intrabar.price_path`)."""
    o, h, lo, c = ohlc[:, 0], ohlc[:, 1], ohlc[:, 2], ohlc[:, 3]
    high_first = c < o if order == "direction" else h - o <= o - lo
    return np.stack([o, np.where(high_first, h, lo), np.where(high_first, lo, h), c], axis=1)


def walk_paths(vertices: np.ndarray, n: int, digits: int) -> np.ndarray:
    """`trading.broker.intrabar.walk_vertices` of every row of `vertices` (bars x 4) at once, with the
    same floating-point operations, so bit for bit the same prices: the `n - 4` interior points are shared out over the
    three legs by length (largest remainders, ties to the earlier leg, take the leftover), each leg
    walked as `np.linspace` walks it (start + k * step, the vertex itself at its end)."""
    legs = np.abs(np.diff(vertices, axis=1))
    extra = n - 4
    total = legs[:, 0] + legs[:, 1] + legs[:, 2]
    flat = ~(total > 0)
    share = legs / np.where(flat, 1.0, total)[:, None] * extra
    share[flat] = (extra, 0.0, 0.0)
    counts = np.floor(share).astype(np.int64)
    counts += _leftover_points(share - counts, extra - counts.sum(axis=1))
    # tick p (1..n-1) lies on leg `leg`, k steps after the leg's first vertex at tick `base`
    ends = np.cumsum(counts + 1, axis=1)  # the tick of each leg's last vertex
    p = np.arange(n, dtype=np.int64)[None, :]
    leg = (p > ends[:, :1]).astype(np.int64) + (p > ends[:, 1:2])
    base = np.take_along_axis(np.concatenate([np.zeros_like(ends[:, :1]), ends[:, :2]], axis=1), leg, axis=1)
    div = np.take_along_axis(counts, leg, axis=1) + 1
    start = np.take_along_axis(vertices, leg, axis=1)
    stop = np.take_along_axis(vertices, leg + 1, axis=1)
    k = (p - base).astype(np.float64)
    path = np.where(k == div, stop, k * ((stop - start) / div) + start)
    return np.round(path, digits)


def _leftover_points(remainder: np.ndarray, leftover: np.ndarray) -> np.ndarray:
    """One more point for the `leftover` legs of each row with the largest remainders, ties to the
    earlier leg (the order `np.argsort(-remainder, kind="stable")` gives)."""
    r = remainder[:, :, None]
    other = remainder[:, None, :]
    before = np.tri(3, k=-1, dtype=bool)[None, :, :]  # [i, j]: leg j comes before leg i
    rank = ((other > r) | ((other == r) & before)).sum(axis=2)
    points: np.ndarray = (rank < leftover[:, None]).astype(np.int64)
    return points


def _minute_walk(m1: np.ndarray, spread: np.ndarray, minute_ms: np.ndarray, digits: int) -> TickArrays:
    """4 ticks a minute (O, nearer extreme, other extreme, C) at 0/15/30/45 s with the minute's spread."""
    o, h, lo, c = m1[:, 0], m1[:, 1], m1[:, 2], m1[:, 3]
    high_first = (h - o) <= (o - lo)
    second = np.where(high_first, h, lo)
    third = np.where(high_first, lo, h)
    bid = np.round(np.stack([o, second, third, c], axis=1).reshape(-1), digits)
    ask = np.round(bid + np.repeat(spread, 4), digits)
    times = (minute_ms[:, None] + np.array([0, 15_000, 30_000, 45_000], dtype=np.int64)[None, :]).reshape(-1)
    return times, bid, ask


class _SpanPath:
    """Finer rows grouped by M15 bar, with the generated path for bars they do not cover."""

    mode = ""
    _segment = 1  # ticks in one continuous walk of the finer data

    def __init__(self, bars: pl.DataFrame, row_ms: np.ndarray, fallback: GeneratedPath) -> None:
        opens = bar_open_ms(bars)
        self._start = np.searchsorted(row_ms, opens, side="left")
        self._end = np.searchsorted(row_ms, opens + BAR_MS, side="left")
        self._fallback = fallback
        self._covered = int(np.count_nonzero(self._end > self._start))
        self._bars = bars.height

    def detail_share(self) -> float:
        return self._covered / self._bars if self._bars else 0.0

    def covered(self, bar: int) -> bool:
        return bool(self._end[bar] > self._start[bar])

    def counts(self) -> np.ndarray:
        return self._counts

    def segment_ticks(self, bar: int) -> int:
        return self._segment if self.covered(bar) else self._fallback.ticks_per_bar

    def _set_counts(self, per_row: int) -> None:
        n = (self._end - self._start) * per_row
        self._counts = np.where(n > 0, n, self._fallback.ticks_per_bar).astype(np.int64)


class M1Detail(_SpanPath):
    """Each M1 bar inside the M15 bar walked O -> H/L -> C (4 ticks a minute, its own spread)."""

    mode = "M1 detail"
    _segment = 4  # each minute is one walk of 4 ticks; its open may gap from the minute before

    def __init__(
        self,
        bars: pl.DataFrame,
        m1: pl.DataFrame,
        *,
        point: float = 0.01,
        digits: int = 2,
        ticks_per_bar: int = DEFAULT_TICKS_PER_BAR,
    ) -> None:
        self._ms = bar_open_ms(m1)
        self._ohlc = m1.select("open", "high", "low", "close").to_numpy()
        self._spread = m1["spread"].to_numpy().astype(np.float64) * point
        self._digits = digits
        super().__init__(bars, self._ms, GeneratedPath(bars, ticks_per_bar, point=point, digits=digits))
        self._set_counts(4)
        self._chunk: int | None = None
        self._first_row = 0
        self._walked: TickArrays = (np.empty(0, np.int64), np.empty(0), np.empty(0))

    def ticks(self, bar: int) -> TickArrays:
        a, b = int(self._start[bar]), int(self._end[bar])
        if b <= a:
            return self._fallback.ticks(bar)
        chunk = bar // CHUNK_BARS
        if chunk != self._chunk:
            self._walk_chunk(chunk)
            self._chunk = chunk
        a, b = 4 * (a - self._first_row), 4 * (b - self._first_row)
        times, bid, ask = self._walked
        return times[a:b], bid[a:b], ask[a:b]

    def _walk_chunk(self, chunk: int) -> None:
        """Every minute of `CHUNK_BARS` bars walked at once (a minute's ticks depend on that minute alone)."""
        first = chunk * CHUNK_BARS
        last = min(first + CHUNK_BARS, self._bars)
        r0, r1 = int(self._start[first]), int(self._end[last - 1])
        self._first_row = r0
        self._walked = _minute_walk(self._ohlc[r0:r1], self._spread[r0:r1], self._ms[r0:r1], self._digits)
        for a in self._walked:
            a.flags.writeable = False  # slices are handed out as views: nobody may change the chunk


class RealTicks(_SpanPath):
    """The broker's ticks inside each bar."""

    mode = "real ticks"
    _segment = 1  # every real tick may have jumped

    def __init__(
        self,
        bars: pl.DataFrame,
        ticks: pl.DataFrame,
        *,
        point: float = 0.01,
        digits: int = 2,
        ticks_per_bar: int = DEFAULT_TICKS_PER_BAR,
    ) -> None:
        self._ms = ticks["time_msc"].to_numpy().astype(np.int64)
        self._bid = ticks["bid"].to_numpy().astype(np.float64)
        self._ask = ticks["ask"].to_numpy().astype(np.float64)
        super().__init__(bars, self._ms, GeneratedPath(bars, ticks_per_bar, point=point, digits=digits))
        self._set_counts(1)

    def ticks(self, bar: int) -> TickArrays:
        a, b = int(self._start[bar]), int(self._end[bar])
        if b <= a:
            return self._fallback.ticks(bar)
        return self._ms[a:b], self._bid[a:b], self._ask[a:b]


__all__ = [
    "DEFAULT_TICKS_PER_BAR",
    "BracketScore",
    "GeneratedPath",
    "IntrabarDataError",
    "M1Detail",
    "RealTicks",
    "SyntheticTruth",
    "TickPath",
    "as_server_ticks",
    "bracket_outcomes",
    "detect_offset_hours",
    "load_detail",
    "load_ticks",
    "missing_days",
    "price_path",
    "resample_bars",
    "score_paths",
    "synthetic_truth",
    "ticks_to_m1",
    "walk_all",
]
