"""The H1 bias of one appended M15 bar (`trading.h1_bias.h1_bias_series`'s row), from carried state.

The H1 bars are the M15 bars grouped by UTC hour; an M15 bar reads the score of the last H1 bar that
has closed by its own close. Only the H1 closes enter the score (close, EMA 9/21, RSI, MACD histogram
and the last five candle directions), so the state is the last closed hours' closes, the recursions
over them (`FeatureCarry`) and the hour being filled. An hour is scored when it closes: at its last
M15 bar (minute 45), or when a later hour's first bar arrives (a missing bar).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from trading.feature_step import FeatureCarry
from trading.h1_bias import H1_WEIGHTS

HOUR_US = 3600 * 1_000_000
M15_US = 900 * 1_000_000


def h1_score(close: float, e9: float, e21: float, rsi: float, hist: float, up_count: float) -> int:
    """One H1 bar's bias, with `h1_bias_series`'s arithmetic (its votes summed in the same order)."""
    votes = (
        float(np.sign(close - e21)),
        float(np.sign(e9 - e21)),
        1.0 if rsi > 55 else (-1.0 if rsi < 45 else 0.0),
        float(np.sign(hist)),
        float(np.sign(up_count)),
    )
    score = 0.0
    for vote, weight in zip(votes, H1_WEIGHTS, strict=True):
        term = vote * weight
        score += 0.0 if np.isnan(term) else term
    if np.isnan(e21) or np.isnan(hist):
        score = 0.0
    return 1 if score >= 0.3 else (-1 if score <= -0.3 else 0)


def _up_count(closes: list[float]) -> float:
    """The directions of the last five H1 candles summed (the last six closes)."""
    last = closes[-6:]
    return float(sum(np.sign(b - a) for a, b in pairwise(last)))


@dataclass(slots=True)
class H1Carry:
    carry: FeatureCarry  # over the closed hours' closes
    closes: list[float]  # the last closed hours' closes (six are read)
    hour: int  # the start (epoch us) of the last hour seen
    hour_open: bool  # whether that hour has not closed yet
    hour_close: float  # its close so far
    bias: int  # the last closed hour's score

    @classmethod
    def of(cls, time_us: np.ndarray, close: np.ndarray) -> H1Carry | None:
        """The state after the last of these M15 bars; None while the closed hours are too few for
        every recursion (then the window is recomputed)."""
        if time_us.size == 0:
            return None
        hours = time_us - time_us % HOUR_US
        last_of_hour = np.flatnonzero(np.append(hours[1:] != hours[:-1], True))
        hour_closes = close[last_of_hour].astype(np.float64)
        closed = hours[last_of_hour] + HOUR_US <= time_us[-1] + M15_US
        n = int(closed.sum())  # every hour but possibly the last has closed
        cl = hour_closes[:n]
        carry = FeatureCarry.of(cl, cl, cl)
        if n < 6 or not carry.ready:
            return None
        up = _up_count(cl.tolist())
        total = carry.avg_gain + carry.avg_loss
        rsi = 100.0 * (carry.avg_gain / total) if total != 0.0 else 0.0
        hist = (carry.ema_fast - carry.ema_slow) - carry.macd_signal
        bias = h1_score(float(cl[-1]), carry.ema_9, carry.ema_21, rsi, hist, up)
        return cls(
            carry, cl[-6:].tolist(), int(hours[-1]), not bool(closed[-1]), float(hour_closes[-1]), bias
        )

    def step(self, time_us: int, close: float) -> int:
        """The bias of the appended M15 bar (its open time, epoch us, and close)."""
        hour = time_us - time_us % HOUR_US
        if hour != self.hour:
            if self.hour_open:
                self._close_hour(self.hour_close)
            self.hour, self.hour_open = hour, True
        elif not self.hour_open:
            raise ValueError("an M15 bar inside an hour already closed: bars off the 15-minute grid")
        self.hour_close = close
        if hour + HOUR_US <= time_us + M15_US:
            self._close_hour(close)
            self.hour_open = False
        return self.bias

    def _close_hour(self, close: float) -> None:
        row = self.carry.advance(close, close, close, self.closes[-1])
        self.closes = [*self.closes[-5:], close]
        self.bias = h1_score(
            close, row["ema_9"], row["ema_21"], row["rsi_14"], row["macd_hist"], _up_count(self.closes)
        )
