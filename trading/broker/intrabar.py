"""The price path inside a bar, and whether a stop loss or take profit was hit on it.

A bar is walked as open -> the nearer of high/low -> the other extreme -> close (on a tie the
high comes first). Bar prices are bid prices, as MT5 stamps them; a SELL position closes at the
ask, so its path is the bid path shifted up by the spread.

Two conservative rules decide a hit:
- a bar that touches both the stop loss and the take profit closes at the stop loss;
- a bar that opens beyond a level (a gap) fills at the open, not at the level.
"""

from __future__ import annotations

import numpy as np

from trading.domain import DealReason, Side

BarPrices = tuple[float, float, float, float]  # open, high, low, close


def price_path(open_: float, high: float, low: float, close: float) -> BarPrices:
    """The four vertices of the path: open, nearer extreme, other extreme, close."""
    if high - open_ <= open_ - low:
        return (open_, high, low, close)
    return (open_, low, high, close)


def stop_hit(
    side: Side, sl: float, tp: float, bar: BarPrices, spread: float = 0.0
) -> tuple[DealReason, float] | None:
    """Which of a position's SL/TP the bar hits and at what price, or None.

    `bar` is (open, high, low, close) in bid prices; `spread` (price units) lifts the path a
    SELL position closes on. SL/TP of 0.0 mean none. SL wins when both are touched; a gap
    through a level at the open fills at the open.
    """
    open_, high, low, _close = bar
    if side is Side.SELL:
        open_, high, low = open_ + spread, high + spread, low + spread
    sign = side.sign
    # A level is touched when the price went to or beyond it in the position's adverse (SL)
    # or favourable (TP) direction. For a BUY, adverse means down.
    if sl and (open_ - sl) * sign <= 0:  # gapped through the stop
        return (DealReason.SL, open_)
    if tp and (open_ - tp) * sign >= 0:
        return (DealReason.TP, open_)
    worst, best = (low, high) if side is Side.BUY else (high, low)
    if sl and (worst - sl) * sign <= 0:
        return (DealReason.SL, sl)
    if tp and (best - tp) * sign >= 0:
        return (DealReason.TP, tp)
    return None


def touch_fraction(bar: BarPrices, level: float) -> float | None:
    """How far along the path (0 = open, 1 = close, by distance travelled) the price first
    reaches `level`; None when the path never does. Used to time-stamp an in-bar fill."""
    path = price_path(*bar)
    lengths = [abs(path[i + 1] - path[i]) for i in range(3)]
    total = sum(lengths)
    if total == 0:
        return 0.0 if path[0] == level else None
    travelled = 0.0
    for i in range(3):
        a, b = path[i], path[i + 1]
        if min(a, b) <= level <= max(a, b):
            return (travelled + abs(level - a)) / total
        travelled += lengths[i]
    return None


def synthesise_path(bar: BarPrices, n: int, digits: int = 2) -> np.ndarray:
    """`n` (>= 4) prices walking the bar's path; every vertex (open, high, low, close) is one of
    them, so the ticks reproduce the bar exactly. Interior points are spread over the three legs
    in proportion to their length. Prices are rounded to `digits`."""
    if n < 4:
        raise ValueError(f"a bar needs at least 4 ticks to show open, high, low and close; got {n}")
    path = price_path(*bar)
    if n == 4:
        return np.round(np.asarray(path, dtype=np.float64), digits)
    return walk_vertices(path, n, digits)


def walk_vertices(vertices: BarPrices, n: int, digits: int = 2) -> np.ndarray:
    """`n` (>= 4) prices through the four `vertices` in the order given (`synthesise_path` for any
    vertex order; `trading.intrabar.walk_paths` does the same for many bars at once)."""
    lengths = np.abs(np.diff(np.asarray(vertices, dtype=np.float64)))
    extra = n - 4
    total = float(lengths.sum())
    share = lengths / total * extra if total > 0 else np.array([extra, 0.0, 0.0])
    counts = np.floor(share).astype(np.int64)
    # largest remainders take the leftover points
    for i in np.argsort(-(share - counts), kind="stable")[: extra - int(counts.sum())]:
        counts[i] += 1
    pieces = [np.array([vertices[0]])]
    for leg in range(3):
        k = int(counts[leg])
        steps = np.linspace(vertices[leg], vertices[leg + 1], k + 2)[1:]  # interior points then the vertex
        pieces.append(steps)
    return np.round(np.concatenate(pieces), digits)
