"""Classic indicators on numpy arrays, seeded exactly as TA-Lib seeds them.

TA-Lib starts an EMA with the simple average of its first `period` values and Wilder smoothing
(RSI, ATR) with the simple average of the first `period` gains/losses/true ranges, and returns NaN
before that. Reproducing the seeding (not just the recursion) makes even a 200-bar window agree with
TA-Lib to rounding, and keeps every value a function of the rows at or before it (the seed point is
fixed at the start of the array).

The recursions are tiny numba kernels; everything else is numpy. Inputs are float64 arrays; warm-up
rows are NaN. No function raises on arrays shorter than its warm-up: it returns all NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _seeded_smoothing(x: np.ndarray, period: int, alpha: float, start: int) -> np.ndarray:
    """prev += alpha·(x - prev), seeded by the mean of x[start:start+period] (TA-Lib's convention)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    first = start + period - 1
    if period < 1 or start < 0 or first >= n:
        return out
    acc = 0.0
    for i in range(start, first + 1):
        acc += x[i]
    prev = acc / period
    out[first] = prev
    for i in range(first + 1, n):
        prev = (x[i] - prev) * alpha + prev
        out[i] = prev
    return out


@njit(cache=True, nogil=True)
def ema_seeded(x: np.ndarray, period: int, start: int = 0) -> np.ndarray:
    """EMA with alpha 2/(period+1), seeded by the mean of x[start:start+period] (TA-Lib convention)."""
    return _seeded_smoothing(x, period, 2.0 / (period + 1) if period > 0 else 0.0, start)


@njit(cache=True, nogil=True)
def wilder_seeded(x: np.ndarray, period: int, start: int = 0) -> np.ndarray:
    """Wilder smoothing (alpha 1/period), seeded by the mean of x[start:start+period] (TA-Lib)."""
    return _seeded_smoothing(x, period, 1.0 / period if period > 0 else 0.0, start)


@njit(cache=True, nogil=True)
def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over `window` values, summed afresh per row (no drift on long arrays);
    NaN until the window is full or while it holds a NaN."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        acc = 0.0
        for j in range(i - window + 1, i + 1):
            acc += x[j]
        out[i] = acc
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` values (SMA)."""
    return rolling_sum(x, window) / window


@njit(cache=True, nogil=True)
def rolling_std(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Trailing standard deviation (two-pass per window, so no drift on long arrays)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window - ddof <= 0:
        return out
    for i in range(window - 1, n):
        acc = 0.0
        for j in range(i - window + 1, i + 1):
            acc += x[j]
        mean = acc / window
        ss = 0.0
        for j in range(i - window + 1, i + 1):
            d = x[j] - mean
            ss += d * d
        out[i] = np.sqrt(ss / (window - ddof))
    return out


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """Value k rows back as float64 (NaN for the first k rows)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    k = min(k, x.shape[0])
    out[:k] = np.nan
    out[k:] = x[: x.shape[0] - k]
    return out


def ema(close: np.ndarray, period: int) -> np.ndarray:
    """TA-Lib EMA(period): first value at index period-1."""
    return ema_seeded(close, period, 0)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """TA-Lib RSI: Wilder-smoothed gains/losses seeded over the first `period` changes; 0 when flat."""
    diff = close - shift(close, 1)
    gain = np.where(diff > 0.0, diff, 0.0)
    loss = np.where(diff < 0.0, -diff, 0.0)
    avg_gain = wilder_seeded(gain, period, 1)
    avg_loss = wilder_seeded(loss, period, 1)
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(total != 0.0, 100.0 * (avg_gain / total), 0.0)
    out[np.isnan(total)] = np.nan
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high-low, |high-prev close|, |low-prev close|); NaN on the first bar, as TA-Lib's TRANGE."""
    prev = shift(close, 1)
    out: np.ndarray = np.maximum(np.maximum(high - low, np.abs(high - prev)), np.abs(low - prev))
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """TA-Lib ATR: Wilder-smoothed true range seeded with the mean of TR[1..period]."""
    return wilder_seeded(true_range(high, low, close), period, 1)


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib MACD(fast, slow, signal): (macd, signal, histogram), all NaN before slow+signal-2.

    TA-Lib seeds the fast EMA on the `fast` closes ending where the slow EMA's seed ends (so both
    lines start on the same bar), then seeds the signal EMA on the first `signal` MACD values.
    """
    fast, slow = min(fast, slow), max(fast, slow)
    n = close.shape[0]
    slow_first = slow - 1
    slow_line = ema_seeded(close, slow, 0)
    fast_line = ema_seeded(close, fast, slow_first - (fast - 1))
    line = fast_line - slow_line
    sig = ema_seeded(line, signal, slow_first)
    first = min(slow_first + signal - 1, n)
    line[:first] = np.nan
    hist = line - sig
    return line, sig, hist


def bollinger(
    close: np.ndarray, period: int = 20, k_up: float = 2.0, k_down: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib BBANDS with an SMA middle and population (ddof=0) deviation: (upper, middle, lower)."""
    middle = rolling_mean(close, period)
    dev = rolling_std(close, period, 0)
    return middle + k_up * dev, middle, middle - k_down * dev
