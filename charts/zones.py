"""Pure geometry for the SMC overlays: how far a zone reaches, where a swing pivot sits, regime runs.

Everything here works on numpy arrays indexed by bar position (0 = oldest bar drawn) and has no
matplotlib in it, so the rules can be pinned by small hand-made tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Zone:
    """A price box from bar `start` to bar `end` (inclusive). `closed` is False while still live."""

    start: int
    end: int
    top: float
    bottom: float
    direction: int  # +1 bullish, -1 bearish
    closed: bool


def as_flags(values: np.ndarray) -> np.ndarray:
    """Signal column -> int8 of -1/0/+1; NaN, None and 0 mean no signal, any other value its sign."""
    arr = np.asarray(values, dtype=np.float64)
    return np.sign(np.nan_to_num(arr, nan=0.0)).astype(np.int8)


def _first_at_or_after(mask: np.ndarray, start: int) -> int:
    hits = np.flatnonzero(mask[start:])
    return int(start + hits[0]) if hits.size else -1


# (low, high) of a zone -> per bar, whether that bar fills or breaks it
_Done = Callable[[float, float], np.ndarray]


def _zones(
    flags: np.ndarray, top: np.ndarray, bottom: np.ndarray, bull_done: _Done, bear_done: _Done
) -> list[Zone]:
    zones: list[Zone] = []
    n = flags.size
    for i in np.flatnonzero(flags):
        hi, lo = top[i], bottom[i]
        if not (np.isfinite(hi) and np.isfinite(lo)):
            continue
        hi, lo = max(hi, lo), min(hi, lo)
        direction = int(flags[i])
        done = bull_done(lo, hi) if direction > 0 else bear_done(lo, hi)
        j = _first_at_or_after(done, int(i) + 1)
        zones.append(Zone(int(i), j if j >= 0 else n - 1, float(hi), float(lo), direction, j >= 0))
    return zones


def fair_value_gap_zones(
    fvg: np.ndarray, top: np.ndarray, bottom: np.ndarray, high: np.ndarray, low: np.ndarray
) -> list[Zone]:
    """FVG boxes from their stamp bar until filled (a later bar trades through the far edge) or the last bar.

    A bullish gap is filled when a later low reaches its bottom; a bearish one when a later high reaches its top.
    """
    return _zones(
        as_flags(fvg),
        np.asarray(top, dtype=np.float64),
        np.asarray(bottom, dtype=np.float64),
        lambda lo, hi: low <= lo,
        lambda lo, hi: high >= hi,
    )


def order_block_zones(ob: np.ndarray, top: np.ndarray, bottom: np.ndarray, close: np.ndarray) -> list[Zone]:
    """Order-block boxes from their stamp bar until broken (a later close beyond the far edge) or the last bar."""
    return _zones(
        as_flags(ob),
        np.asarray(top, dtype=np.float64),
        np.asarray(bottom, dtype=np.float64),
        lambda lo, hi: close < lo,
        lambda lo, hi: close > hi,
    )


def swing_pivots(
    flags: np.ndarray, levels: np.ndarray, prices: np.ndarray, lookback: int = 10
) -> list[tuple[int, float]]:
    """(bar, level) for each flagged swing, placed on the pivot candle rather than the confirmation bar.

    Swings are flagged on the bar that confirms them (several bars after the pivot). The pivot is the most
    recent bar within `lookback` bars at or before the flag whose price equals the level; if none matches
    (the pivot scrolled off the left edge) the flag bar is used.
    """
    flag_arr = np.nan_to_num(np.asarray(flags, dtype=np.float64), nan=0.0) != 0
    level_arr = np.asarray(levels, dtype=np.float64)
    out: list[tuple[int, float]] = []
    for i in np.flatnonzero(flag_arr):
        level = level_arr[i]
        if not np.isfinite(level):
            continue
        lo = max(0, int(i) - lookback)
        window = prices[lo : int(i) + 1]
        hits = np.flatnonzero(np.isclose(window, level, rtol=0.0, atol=1e-9))
        out.append((lo + int(hits[-1]) if hits.size else int(i), float(level)))
    return out


def runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """Consecutive equal values as (start, end inclusive, value)."""
    arr = np.asarray(values)
    if arr.size == 0:
        return []
    cuts = np.flatnonzero(arr[1:] != arr[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts - 1, [arr.size - 1]))
    return [(int(s), int(e), int(arr[s])) for s, e in zip(starts, ends, strict=True)]
