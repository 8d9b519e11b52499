"""The live analyzer's incremental path: the analysis of an appended bar from the carried state.

`AnalysisFrame.build` recomputes a window of history; a live loop sees the same history again plus
one bar. `IncrementalAnalysis` keeps the running state from its anchor (the first bar of the window
it was rebuilt on) — the indicator recursions (`trading.feature_step`), the SMC rules' state and last
rows (`trading.smc_step`), the regime's forward filter (the regime source's `stepper()`) — and moves
it on by the new bar; the model scores the one new row (the signal source's `predict_row`). The row
is what `AnalysisFrame.build(bars since the anchor)` gives for that bar (tests/test_incremental_
analysis.py proves it bar by bar). Anything but a one-bar extension of the history it holds (a gap,
a restart, a corrected bar, a model swap) rebuilds the state from the window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

import numpy as np
import polars as pl

from trading.analysis import SetupLike
from trading.feature_step import FeatureCarry, step_features
from trading.h1_step import M15_US, H1Carry
from trading.smc_step import SmcCarry

INDICATOR_COLUMNS = ("rsi_14", "atr_14", "macd_hist", "ema_9", "ema_21", "bb_upper", "bb_lower")
MIN_ROWS = 128  # below this the window is rebuilt every bar (every warm-up is over from here on)
TAIL = 104  # the rows a step reads (the regime's 100-bar windows and one more close)
RECENT = 25  # the closes a MarketAnalysis carries
_COLUMNS = ("open", "high", "low", "close", "tick_volume", "spread")


class RegimeStep(Protocol):
    ready: bool

    def rebuild(self, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray: ...

    def step(self, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray: ...


class BarRow(NamedTuple):
    """What `AnalysisFrame.at` reads of one row, for the analyzer to compose the `MarketAnalysis` (a named
    tuple: the backtest builds one a bar, and a frozen dataclass costs several times more to build)."""

    time: datetime
    close: float
    high: float
    low: float
    spread: float
    indicators: tuple[float, ...]  # INDICATOR_COLUMNS
    crisis: bool  # the flash-crash override
    regime_state: int  # argmax of the regime probabilities; -1 unknown
    regime_confidence: float
    setup: SetupLike | None
    prev_setup: SetupLike | None
    p_win: float  # the meta-model's P(win) of the setup; NaN without one
    recent_closes: tuple[float, ...]
    h1_bias: int = 0  # +1 / -1 / 0 (0 also when not asked for)


def regime_pick(probs: np.ndarray | None) -> tuple[int, float]:
    """(argmax, its probability), or (-1, 0) where the probabilities are not all finite."""
    if probs is None or not np.isfinite(probs).all():
        return -1, 0.0
    best = int(probs.argmax())
    return best, float(probs[best])


class IncrementalAnalysis:
    """The carried state of one analyzer. `__call__(bars, history)` gives the last bar's `BarRow`, or
    None when the sources cannot be stepped (then the analyzer recomputes the window, as before)."""

    def __init__(
        self,
        regime: Any,
        signal: Any,
        flash_crash_pct: float,
        flash_crash_bars: int,
        with_h1_bias: bool = False,
    ) -> None:
        self.regime, self.signal = regime, signal
        self.with_h1_bias = with_h1_bias
        self._h1: H1Carry | None = None
        self.flash_crash_pct, self.flash_crash_bars = flash_crash_pct, flash_crash_bars
        self.rebuilds = 0  # how often the state was rebuilt from a window (a test and /health read it)
        self.steps = 0
        self._cols: _Rows | None = None  # the history held (its last window), from the anchor on
        self._key: tuple[object, object] | None = None
        self._features: FeatureCarry | None = None
        self._smc: SmcCarry | None = None
        self._regime: RegimeStep | None = None
        self._seen: tuple[pl.DataFrame, dict[str, np.ndarray]] | None = None  # the last bars' columns
        self._checked: tuple[pl.DataFrame, bool] | None = None  # and whether they extend the history

    @property
    def steppable(self) -> bool:
        """Without a model, or with the slot adapters of one model (`models.live`): its regime stepper,
        its single-row scoring, and the regime feature the model reads from the same filter."""
        regime, signal = self.regime, self.signal
        if regime is not None and not hasattr(regime, "stepper"):
            return False
        if signal is None:
            return True
        return (
            regime is not None and hasattr(signal, "predict_row") and regime.model_key() is signal.model_key()
        )

    def _model_key(self) -> tuple[object, object]:
        return (
            None if self.regime is None else self.regime.model_key(),
            None if self.signal is None else self.signal.model_key(),
        )

    def will_step(self, bars: pl.DataFrame) -> bool:
        """Whether `bars` is one step of the state held (then a call costs one bar's work, so a caller
        need not move it off its event loop)."""
        if not (self.steppable and self._model_key() == self._key):
            return False
        steps = self._extends(self._columns(bars))
        self._checked = (bars, steps)
        return steps

    def _columns(self, bars: pl.DataFrame) -> dict[str, np.ndarray]:
        seen = self._seen
        if seen is not None and seen[0] is bars:  # asked by will_step just before
            return seen[1]
        cols = {k: bars[k].to_numpy().astype(np.float64, copy=False) for k in _COLUMNS}
        cols["time"] = bars["time"].to_numpy().astype("datetime64[us]").view(np.int64)  # epoch microseconds
        self._seen = (bars, cols)
        return cols

    def __call__(self, bars: pl.DataFrame, history: int) -> BarRow | None:
        if not self.steppable:
            return None
        try:
            return self._analyse(bars, history)
        except BaseException:
            self._cols = None  # a step half done (a model that raised): the next bar rebuilds
            raise

    def _analyse(self, bars: pl.DataFrame, history: int) -> BarRow | None:
        cols = self._columns(bars)
        checked, self._seen, self._checked = self._checked, None, None
        key = self._model_key()
        if key == self._key and (
            checked[1] if checked is not None and checked[0] is bars else self._extends(cols)
        ):
            self._append(cols)
            self.steps += 1
            return self._step(bars["time"][-1])
        self._key = key
        w = {k: np.array(v[-history:]) for k, v in cols.items()}  # owned and writable, as appended ones are
        if w["close"].size < MIN_ROWS or (self.with_h1_bias and (w["time"] % M15_US != 0).any()):
            self._cols = None  # too short, or bars off the 15-minute grid the H1 grouping relies on
            return None
        return self._rebuild(w, bars["time"][-1])

    def _extends(self, cols: dict[str, np.ndarray]) -> bool:
        """The bars are the history held plus one newer bar (same rows where they overlap)."""
        if self._cols is None or self._features is None:
            return False
        held = self._cols.tail()
        t = cols["time"]
        if t.size < 2 or t[-2] != held["time"][-1] or t[-1] <= t[-2]:
            return False
        if self.with_h1_bias and t[-1] % M15_US != 0:
            return False
        overlap = min(t.size - 1, held["time"].size)
        return all(np.array_equal(cols[k][-1 - overlap : -1], held[k][-overlap:]) for k in held)

    def _append(self, cols: dict[str, np.ndarray]) -> None:
        assert self._cols is not None
        # keep the overlap the next bar is checked on, and a step's rows
        self._cols.append({k: v[-1] for k, v in cols.items()}, max(cols["time"].size, TAIL))

    def _rebuild(self, w: dict[str, np.ndarray], last_time: datetime) -> BarRow | None:
        """The state from the window's first bar to its last but one, then the last bar as a step (so a
        start-up runs, and compiles, the code every later bar runs)."""
        self.rebuilds += 1
        h, lo, c = w["high"][:-1], w["low"][:-1], w["close"][:-1]
        self._features = FeatureCarry.of(h, lo, c)
        self._smc = SmcCarry.of(w["open"][:-1], h, lo, c)
        stepper = self.regime.stepper() if self.regime is not None else None
        if stepper is not None:
            stepper.rebuild(h, lo, c)
        self._regime = stepper
        self._h1 = H1Carry.of(w["time"][:-1], w["close"][:-1]) if self.with_h1_bias else None
        self._cols = _Rows(w)
        h1_ready = not self.with_h1_bias or self._h1 is not None
        if not (self._features.ready and self._smc.ready and (stepper is None or stepper.ready) and h1_ready):
            self._cols = None
            return None
        return self._step(last_time)

    def _step(self, bar_time: datetime) -> BarRow:
        assert self._cols is not None and self._features is not None and self._smc is not None
        t = self._cols.tail(TAIL)
        o, h, lo, c = t["open"], t["high"], t["low"], t["close"]
        row = self._smc.step(o, h, lo, c)
        row |= step_features(self._features, o, h, lo, c, t["tick_volume"], t["spread"], t["time"])
        setup, prev = self._smc.setups()
        probs = self._regime.step(h, lo, c) if self._regime is not None else None
        state, confidence = regime_pick(probs)
        p_win = float("nan")
        if setup is not None and self.signal is not None:
            p_win = float(self.signal.predict_row(row, state, setup, float(t["spread"][-1])))
        closes = c[-RECENT:]
        first = c[-self.flash_crash_bars] if c.size >= self.flash_crash_bars else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            move = abs(c[-1] / first - 1) * 100
        return BarRow(
            time=bar_time,
            close=float(c[-1]),
            high=float(h[-1]),
            low=float(lo[-1]),
            spread=float(t["spread"][-1]),
            indicators=tuple(float(row[k]) for k in INDICATOR_COLUMNS),
            crisis=bool(first > 0 and move >= self.flash_crash_pct),
            regime_state=state,
            regime_confidence=confidence,
            setup=setup,
            prev_setup=prev,
            p_win=p_win,
            recent_closes=tuple(closes.tolist()),
            h1_bias=self._h1.step(int(t["time"][-1]), float(c[-1])) if self._h1 is not None else 0,
        )


class _Rows:
    """Columns with room to append in place (no copy of the window per bar)."""

    def __init__(self, cols: dict[str, np.ndarray]) -> None:
        n = cols["time"].size
        self._buf = {k: np.empty(2 * n + 64, v.dtype) for k, v in cols.items()}
        for k, v in cols.items():
            self._buf[k][:n] = v
        self._n = n

    def append(self, row: dict[str, np.generic], keep: int) -> None:
        """One row more, keeping at least the last `keep` rows."""
        n = self._n
        size = self._buf["time"].size
        if n == size and keep > size // 2:  # full, and a longer window than it was made for: more room
            self._buf = {
                k: np.concatenate([v, np.empty(2 * keep + 64, v.dtype)]) for k, v in self._buf.items()
            }
        elif n == size:  # full: the last keep - 1 rows move to the front
            n = keep - 1
            for v in self._buf.values():
                v[:n] = v[self._n - n : self._n].copy()
        for k, v in self._buf.items():
            v[n] = row[k]
        self._n = n + 1

    def tail(self, rows: int | None = None) -> dict[str, np.ndarray]:
        """Views of the last `rows` rows (all held by default); valid until the next append."""
        first = 0 if rows is None else max(0, self._n - rows)
        return {k: v[first : self._n] for k, v in self._buf.items()}
