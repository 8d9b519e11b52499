"""The features of one appended bar, from the recursions' carried state and the last few bars.

`trading.features.compute_features` recomputes every row; a live loop only needs the new one. Every
column but the seeded recursions (`RECURSIVE_COLUMNS`: EMAs, Wilder smoothing and what is made of
them) is a function of the last `FEATURE_LOOKBACK` rows, so it is computed by the same code on those
rows; the recursions are stepped from their last values with the same arithmetic as
`trading.indicators` (`prev += alpha * (x - prev)`), so the row equals the full recompute's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trading import indicators as ind
from trading.features import FEATURE_LOOKBACK, feature_arrays

_RSI, _ATR, _FAST, _SLOW, _SIGNAL = 14, 14, 12, 26, 9


def _ema_alpha(period: int) -> float:
    return 2.0 / (period + 1)


def _smooth(prev: float, x: float, alpha: float) -> float:
    return (x - prev) * alpha + prev  # trading.indicators._seeded_smoothing's step, operation for operation


@dataclass(slots=True)
class FeatureCarry:
    """The recursions' values at the last row: RSI's average gain/loss, ATR, the EMAs, MACD's lines."""

    avg_gain: float
    avg_loss: float
    atr: float
    ema_9: float
    ema_21: float
    ema_fast: float
    ema_slow: float
    macd_signal: float

    @classmethod
    def of(cls, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> FeatureCarry:
        """The state after the last of these rows, computed exactly as `trading.indicators` does."""
        diff = c - ind.shift(c, 1)
        gain = np.where(diff > 0.0, diff, 0.0)
        loss = np.where(diff < 0.0, -diff, 0.0)
        slow_first = _SLOW - 1
        slow = ind.ema_seeded(c, _SLOW, 0)
        fast = ind.ema_seeded(c, _FAST, slow_first - (_FAST - 1))
        signal = ind.ema_seeded(fast - slow, _SIGNAL, slow_first)
        last = (
            ind.wilder_seeded(gain, _RSI, 1),
            ind.wilder_seeded(loss, _RSI, 1),
            ind.wilder_seeded(ind.true_range(h, lo, c), _ATR, 1),
            ind.ema(c, 9),
            ind.ema(c, 21),
            fast,
            slow,
            signal,
        )
        return cls(*(float(line[-1]) if line.size else float("nan") for line in last))

    def advance(self, close: float, high: float, low: float, prev_close: float) -> dict[str, float]:
        """Moves the recursions on by one bar; returns the RECURSIVE_COLUMNS of that bar."""
        row: dict[str, float] = {}
        diff = close - prev_close
        self.avg_gain = _smooth(self.avg_gain, diff if diff > 0.0 else 0.0, 1.0 / _RSI)
        self.avg_loss = _smooth(self.avg_loss, -diff if diff < 0.0 else 0.0, 1.0 / _RSI)
        total = self.avg_gain + self.avg_loss
        row["rsi_14"] = row["rsi"] = 100.0 * (self.avg_gain / total) if total != 0.0 else 0.0
        tr = max(max(high - low, abs(high - prev_close)), abs(low - prev_close))
        self.atr = _smooth(self.atr, tr, 1.0 / _ATR)
        row["atr_14"] = row["atr"] = self.atr
        row["atr_percent"] = self.atr / close * 100.0 if close != 0.0 else float("nan")
        self.ema_fast = _smooth(self.ema_fast, close, _ema_alpha(_FAST))
        self.ema_slow = _smooth(self.ema_slow, close, _ema_alpha(_SLOW))
        line = self.ema_fast - self.ema_slow
        self.macd_signal = _smooth(self.macd_signal, line, _ema_alpha(_SIGNAL))
        row["macd"], row["macd_signal"] = line, self.macd_signal
        row["macd_hist"] = row["macd_histogram"] = line - self.macd_signal
        was_above = self.ema_9 > self.ema_21
        self.ema_9 = _smooth(self.ema_9, close, _ema_alpha(9))
        self.ema_21 = _smooth(self.ema_21, close, _ema_alpha(21))
        above = self.ema_9 > self.ema_21
        row["ema_9"], row["ema_21"] = self.ema_9, self.ema_21
        row["ema_cross_bull"] = int(above and not was_above)  # both EMAs are defined once the carry is ready
        row["ema_cross_bear"] = int(was_above and not above)
        return row

    @property
    def ready(self) -> bool:
        """Every recursion is seeded (the history is past the warm-up), so a step equals a recompute."""
        return all(
            np.isfinite(v)
            for v in (
                self.avg_gain,
                self.avg_loss,
                self.atr,
                self.ema_9,
                self.ema_21,
                self.ema_fast,
                self.ema_slow,
                self.macd_signal,
            )
        )


def step_features(
    carry: FeatureCarry,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    vol: np.ndarray,
    spread: np.ndarray,
    time_us: np.ndarray,
) -> dict[str, float]:
    """Every FEATURE_COLUMN of the last of these rows (at least FEATURE_LOOKBACK of them, float64 columns);
    `carry` (the state after the row before) is moved on to this row."""
    if c.size < FEATURE_LOOKBACK:
        raise ValueError(f"a feature step needs the last {FEATURE_LOOKBACK} rows, got {c.size}")
    k = FEATURE_LOOKBACK
    tail = feature_arrays(o[-k:], h[-k:], lo[-k:], c[-k:], vol[-k:], spread[-k:], time_us[-k:])
    row = {name: values[-1].item() for name, values in tail.items()}
    row |= carry.advance(float(c[-1]), float(h[-1]), float(lo[-1]), float(c[-2]))
    return row
