"""The regime's filtered probabilities of one appended bar, for the live analyzer's incremental path.

`RegimeModel.filtered_probabilities(bars)` computes the eight inputs over the whole frame (polars
rolling windows) and runs the forward filter from its first row. A live loop that has done so once
only needs the next row: its inputs come from the last `LOOKBACK` bars and the carried ATR (an
exponential average), and the forward filter moves on from the last row's log-probabilities with
`models.regime.forward_row`, the row step `_forward_filter` itself runs. The rolling means and deviations are summed afresh
here while polars keeps running sums, so a row agrees with the full recompute to ~1e-12, not bit for
bit (tests/test_incremental_analysis.py bounds it and checks the regime label is the same).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.regime import (
    N_STATES,
    RegimeModel,
    _diag_log_likelihood,
    _forward_filter,
    _input_matrix,
    forward_row,
)

LOOKBACK = 102  # vol_regime's 100 ATRs; volatility_100's 100 log returns need 101 closes
WARMUP = 113  # the first row every input is defined on (the 100-bar window of a 14-bar ATR)
_ALPHA = 1 / 14


def _forward_step(prev: np.ndarray, log_emission: np.ndarray, log_trans: np.ndarray) -> np.ndarray:
    """One row of `_forward_filter` after the first (`forward_row`, the same compiled code)."""
    out = np.empty(prev.shape[0])
    forward_row(prev, log_emission, log_trans, out)
    return out


def _true_range(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    prev = np.concatenate([[np.nan], c[:-1]])
    tr = np.fmax(np.fmax(h - lo, np.abs(h - prev)), np.abs(lo - prev))  # polars' max_horizontal skips nulls
    tr[0] = h[0] - lo[0]
    return np.asarray(tr, dtype=np.float64)


class RegimeStepper:
    """The forward filter of one fitted `RegimeModel` carried from row to row."""

    def __init__(self, model: RegimeModel) -> None:
        self.model = model
        with np.errstate(divide="ignore"):
            self._log_trans = np.log(model.transmat)
        self._log_alpha = np.full(N_STATES, np.nan)  # the last row's normalised log forward variables
        self._atr = np.empty(0)  # the last LOOKBACK - 2 ATR values, oldest first
        self.rows = 0

    @property
    def ready(self) -> bool:
        return self.rows >= WARMUP and bool(np.isfinite(self._log_alpha).all())

    def rebuild(self, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Runs the filter over these rows (the whole history, as `filtered_probabilities` does) and keeps
        its state; returns the last row's probabilities (NaN while an input warms up)."""
        bars = pl.DataFrame({"high": h, "low": lo, "close": c})
        x, valid = _input_matrix(bars)
        self.rows = len(x)
        if not valid.any():
            self._log_alpha = np.full(N_STATES, np.nan)
            return self._log_alpha.copy()
        m = self.model
        log_em = _diag_log_likelihood((x - m.scaler_mean) / m.scaler_scale, m.means, m.variances)
        log_em[~valid] = 0.0
        with np.errstate(divide="ignore"):
            log_alpha = _forward_filter(log_em, np.log(m.startprob), self._log_trans)
        self._log_alpha = log_alpha[-1].copy()
        atr = pl.Series(_true_range(h, lo, c)).ewm_mean(alpha=_ALPHA, adjust=False, min_samples=14)
        self._atr = atr.to_numpy()[-(LOOKBACK - 2) :].astype(np.float64)
        return np.exp(self._log_alpha) if valid[-1] else np.full(N_STATES, np.nan)

    def step(self, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
        """The probabilities of the last of these rows (the appended bar; at least LOOKBACK rows given)."""
        if not self.ready:
            raise RuntimeError("the regime step needs a history past its warm-up (rebuild first)")
        if c.size < LOOKBACK:
            raise ValueError(f"a regime step needs the last {LOOKBACK} rows, got {c.size}")
        h, lo, c = h[-LOOKBACK:], lo[-LOOKBACK:], c[-LOOKBACK:]
        tr = max(h[-1] - lo[-1], abs(h[-1] - c[-2]), abs(lo[-1] - c[-2]))
        prev_atr = float(self._atr[-1])
        atr = prev_atr + _ALPHA * (tr - prev_atr)  # polars' ewm_mean(adjust=False) step
        self._atr = np.append(self._atr[1:], atr)
        x = _inputs(h, lo, c, self._atr)
        m = self.model
        log_em = _diag_log_likelihood(((x - m.scaler_mean) / m.scaler_scale)[None, :], m.means, m.variances)
        self._log_alpha = _forward_step(self._log_alpha, log_em[0], self._log_trans)
        self.rows += 1
        return np.asarray(np.exp(self._log_alpha), dtype=np.float64)


def _inputs(h: np.ndarray, lo: np.ndarray, c: np.ndarray, atr: np.ndarray) -> np.ndarray:
    """`models.regime.regime_inputs` of the last row, as `_input_matrix` cleans it (NaN 0, inf +-3)."""
    lr = np.log(c[1:] / c[:-1])  # the last 101 log returns
    a = float(atr[-1])
    diff = np.diff(c[-15:])
    gain = float(np.clip(diff, 0.0, None).mean())
    loss = float(np.clip(-diff, 0.0, None).mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
        x = np.array(
            [
                lr[-1],
                lr[-20:].std(ddof=1),
                lr[-100:].std(ddof=1),
                np.float64(h[-1] - lo[-1]) / a,
                abs(c[-9:].mean() - c[-21:].mean()) / np.float64(a),
                abs(rsi - 50.0) / 50.0,
                (lr[-20:] * lr[-21:-1]).mean(),
                (a - atr[-100:].mean()) / atr[-100:].std(ddof=1),
            ]
        )
    return np.asarray(np.nan_to_num(x, nan=0.0, posinf=3.0, neginf=-3.0), dtype=np.float64)
