"""Builds the per-bar `MarketAnalysis`: features, SMC, session, regime, ML, market quality.

`AnalysisFrame.build(bars)` computes every per-bar input for a whole frame at once; every column
is causal (row t uses rows <= t; the no-look-ahead tests of features, SMC and the regime filter
prove it), so `frame.at(t)` is exactly what a live loop holding the same history sees at bar t.
The backtest builds it once and reads row by row. The live analyzer steps the appended bar from
carried state (`trading.live_analysis`), which gives the row this frame gives over the same bars from
the state's anchor on (tests/test_incremental_analysis.py); `compose` (`trading.analysis_compose`) turns
either into the `MarketAnalysis`. Same code, same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import polars as pl

from trading import features, smc
from trading.analysis import MarketAnalysis, SetupLike
from trading.analysis_compose import compose
from trading.analysis_rows import RowLists
from trading.h1_bias import h1_bias_series
from trading.live_analysis import INDICATOR_COLUMNS, RECENT, BarRow, IncrementalAnalysis
from trading.parameters import StrategyParams

_M15_US = 15 * 60 * 1_000_000
_DEFAULTS = StrategyParams()


class RegimeSource(Protocol):
    def filtered_probabilities(self, bars: pl.DataFrame) -> np.ndarray:
        """(n, 3) causal P(low, medium, high) per row; NaN while warming up."""
        ...


class SignalSource(Protocol):
    """A direction model (`predict_frame`: P(up) per bar). A meta-model also has
    `predict_setups(bars, rows, setups, feats=, events=)` -> P(win) of each setup (given the frame's
    `compute_features` and `smc.analyze` outputs, so they are not computed twice), `gate` -> (min_prob, base_rate, note)
    and `edge` (its out-of-sample verdict in words); the analyzer prefers those when present."""

    @property
    def version(self) -> str: ...

    def predict_frame(self, bars: pl.DataFrame) -> np.ndarray:
        """Calibrated P(up) per bar (NaN where there is no prediction)."""
        ...


@dataclass(slots=True)
class AnalysisFrame:
    bars: pl.DataFrame
    columns: dict[str, np.ndarray]  # feature and bar columns as numpy, for fast row access
    structure: pl.DataFrame  # smc.analyze output
    regime_probs: np.ndarray | None  # (n, 3)
    p_up: np.ndarray | None  # (n,)
    model_version: str
    h1: np.ndarray | None  # per-row H1 bias (+1/-1/0) when requested
    min_threshold: float = 0.60
    max_threshold: float = 0.85
    _signal_cols: smc.SignalColumns | None = None
    p_win: np.ndarray | None = None  # (n,) meta-model P(win) of the bar's setup; NaN without one
    ml_gate: tuple[float, float | None, str] = (0.0, None, "")  # min_prob, base_rate, note
    strategy_edge: str = ""
    _setups: dict[int, smc.SMCSetup | None] | None = None
    _rows: tuple[int, RowLists] | None = None  # (first row, lists) of the chunk `at` last read
    # the crisis override: a close move of at least this many percent over the last `flash_crash_bars`
    # closes (the settings' FLASH_CRASH_PCT, as the engine's flash-crash guard reads it)
    flash_crash_pct: float = _DEFAULTS.flash_crash_pct
    flash_crash_bars: int = _DEFAULTS.flash_crash_bars
    _times: list[datetime] | None = (
        None  # `times`, converted on first use (the live loop reads one row a frame)
    )

    @classmethod
    def build(
        cls,
        bars: pl.DataFrame,
        regime: RegimeSource | None = None,
        signal: SignalSource | None = None,
        with_h1_bias: bool = False,
        min_threshold: float = 0.60,
        max_threshold: float = 0.85,
        ml_rows: int | None = None,
        flash_crash_pct: float = _DEFAULTS.flash_crash_pct,
        flash_crash_bars: int = _DEFAULTS.flash_crash_bars,
    ) -> AnalysisFrame:
        """`ml_rows`: score only the last N bars' setups with a meta-model (the live loop reads one).
        `flash_crash_pct` / `flash_crash_bars`: the crisis override's move (the strategy parameters')."""
        feats = features.compute_features(bars)
        wanted = ("open", "high", "low", "close", "spread", *INDICATOR_COLUMNS)
        columns = {c: feats[c].to_numpy() for c in wanted}
        predict_setups = getattr(signal, "predict_setups", None) if signal is not None else None
        frame = cls(
            bars=bars,
            columns=columns,
            structure=smc.analyze(bars),
            regime_probs=regime.filtered_probabilities(bars) if regime is not None else None,
            p_up=(
                np.asarray(signal.predict_frame(bars), dtype=float)
                if signal is not None and predict_setups is None
                else None
            ),
            model_version=signal.version if signal is not None else "",
            h1=h1_bias_series(bars) if with_h1_bias else None,
            min_threshold=min_threshold,
            max_threshold=max_threshold,
            strategy_edge=str(getattr(signal, "edge", "")) if signal is not None else "",
            flash_crash_pct=flash_crash_pct,
            flash_crash_bars=flash_crash_bars,
        )
        if predict_setups is not None:
            n = bars.height
            first = 0 if ml_rows is None else max(0, n - ml_rows)
            rows, setups = [], []  # the rows with a setup, and their setups (no pair per row: fewer objects)
            for i in range(first, n):
                setup = frame.setup_at(i)
                if setup is not None:
                    rows.append(i)
                    setups.append(setup)
            p_win = np.full(n, np.nan)
            if rows:
                p_win[rows] = predict_setups(bars, rows, setups, feats=feats, events=frame.structure)
            frame.p_win = p_win
            frame.ml_gate = tuple(getattr(signal, "gate", (0.0, None, "")))
        return frame

    def __len__(self) -> int:
        return self.bars.height

    @property
    def times(self) -> list[datetime]:
        """UTC-aware datetimes (bar open), one per row."""
        if self._times is None:
            self._times = self.bars["time"].to_list()
        return self._times

    def setup_at(self, i: int) -> smc.SMCSetup | None:
        if self._setups is None:
            self._setups = {}
        if i in self._setups:
            return self._setups[i]
        if self._signal_cols is None:
            self._signal_cols = smc.signal_columns(self.structure)
        setup = self._setups[i] = smc.signal_at(self._signal_cols, i)
        return setup

    def _row_lists(self, i: int) -> tuple[RowLists, int]:
        """The chunk of row lists holding row `i` (with the rows before it that `at` reads) and its
        index there; one chunk is kept, so a long frame's Python lists do not grow with its length."""
        lo = i - i % _ROW_CHUNK
        start = max(0, lo - _ROW_LEAD)
        if self._rows is None or self._rows[0] != start:
            hi = min(len(self), lo + _ROW_CHUNK)
            opens = self.bars["time"].slice(start, hi - start).dt.epoch("us").to_numpy()
            self._rows = (
                start,
                RowLists.of(
                    {k: v[start:hi] for k, v in self.columns.items()},
                    None if self.regime_probs is None else self.regime_probs[start:hi],
                    (opens + _M15_US) // 60_000_000,  # the bars' closes, in minutes
                    self.flash_crash_pct,
                    self.flash_crash_bars,
                ),
            )
        return self._rows[1], i - start

    def analyses(self, first: int, last: int) -> list[MarketAnalysis]:
        """`at` of rows `first`..`last - 1` (0 <= first <= last <= len), a run of rows at a time: each
        row's fields zipped from the row lists of its chunk into its `BarRow`, handed the setup of the
        row before, and composed as `at` composes one."""
        out: list[MarketAnalysis] = []
        k = first
        while k < last:
            rows, j = self._row_lists(k)
            stop = min(last, k - j + len(rows.close))  # the rows of this chunk of lists
            out += self._run(rows, j, k, stop, self.setup_at(k - 1) if k > 0 else None)
            k = stop
        return out

    def _run(
        self, rows: RowLists, j: int, first: int, stop: int, prev: SetupLike | None
    ) -> list[MarketAnalysis]:
        """The analyses of rows first..stop-1, the first at index `j` of `rows` (all of them in it);
        `prev`: the setup of the row before the first."""
        setups = [self.setup_at(k) for k in range(first, stop)]
        prevs = [prev, *setups[:-1]]
        end = j + stop - first
        closes = rows.close
        recent = [tuple(closes[max(0, r + 1 - RECENT) : r + 1]) for r in range(j, end)]
        p_win = [math.nan] * len(setups) if self.p_win is None else self.p_win[first:stop].tolist()
        p_up = [None] * len(setups) if self.p_up is None else self.p_up[first:stop].tolist()
        h1 = [0] * len(setups) if self.h1 is None else [int(b) for b in self.h1[first:stop]]
        # the live loop reads one row a frame: its times are not all converted for it
        times = (
            self._times[first:stop] if self._times is not None else self.bars["time"][first:stop].to_list()
        )
        bar_rows = map(
            BarRow._make,
            zip(
                times,
                closes[j:end],
                rows.high[j:end],
                rows.low[j:end],
                rows.spread[j:end],
                rows.indicators[j:end],
                rows.crisis[j:end],
                rows.regime_state[j:end],
                rows.regime_confidence[j:end],
                setups,
                prevs,
                p_win,
                recent,
                h1,
                strict=True,
            ),
        )
        meta, thresholds = self.p_win is not None, (self.min_threshold, self.max_threshold)
        fixed = (self.ml_gate, thresholds, self.model_version, self.strategy_edge)
        return [
            compose(row, meta, up, *fixed, session)
            for row, session, up in zip(bar_rows, rows.session[j:end], p_up, strict=True)
        ]

    def at(self, i: int, prev_setup: SetupLike | bool | None = False) -> MarketAnalysis:
        """The analysis of closed bar i (negative indexes count from the end).

        `prev_setup` may pass the setup already computed for bar i-1 (False = compute it). A run of rows
        reads faster through `analyses` (the same analyses: tests/test_analysis_runs.py)."""
        n = len(self)
        i = i + n if i < 0 else i
        if not 0 <= i < n:
            raise IndexError(f"bar {i} outside the frame of {n}")
        rows, j = self._row_lists(i)
        setup = self.setup_at(i)
        prev = self.setup_at(i - 1) if prev_setup is False and i > 0 else (prev_setup or None)
        bar_time = self._times[i] if self._times is not None else self.bars["time"][i]
        p_win = float(self.p_win[i]) if self.p_win is not None else None
        p_up = float(self.p_up[i]) if self.p_up is not None else None
        row = BarRow(
            time=bar_time,
            close=rows.close[j],
            high=rows.high[j],
            low=rows.low[j],
            spread=rows.spread[j],
            indicators=rows.indicators[j],
            crisis=rows.crisis[j],
            regime_state=rows.regime_state[j],
            regime_confidence=rows.regime_confidence[j],
            setup=setup,
            prev_setup=None if isinstance(prev, bool) else prev,
            p_win=p_win if p_win is not None else math.nan,
            recent_closes=tuple(rows.close[max(0, j + 1 - RECENT) : j + 1]),  # a chunk starts _ROW_LEAD early
            h1_bias=int(self.h1[i]) if self.h1 is not None else 0,
        )
        return compose(
            row,
            meta=p_win is not None,
            p_up=p_up,
            ml_gate=self.ml_gate,
            thresholds=(self.min_threshold, self.max_threshold),
            model_version=self.model_version,
            strategy_edge=self.strategy_edge,
            session=rows.session[j],
        )


_ROW_CHUNK = 4096
_ROW_LEAD = RECENT - 1  # the rows before a chunk that `at` reads (the recent closes; the flash-crash window)


class MarketAnalyzer:
    """The live analyzer: the analysis of the last closed bar of the latest `history` closed bars.

    A bar that extends the history it saw last by one is analysed from the carried state
    (`trading.live_analysis`: work for one bar, not a window); anything else (the first call, a gap, a
    corrected bar, a model swap) rebuilds that state from the window. The result is the window
    frame's row from the state's anchor on (the first bar of the window it was rebuilt on), so the
    same as a backtest started there. Sources that cannot be stepped (a direction model, a test's
    fake) rebuild the frame over the window each bar, as before.
    """

    def __init__(
        self,
        regime: RegimeSource | None = None,
        signal: SignalSource | None = None,
        history: int = 1500,
        with_h1_bias: bool = False,
        min_threshold: float = 0.60,
        max_threshold: float = 0.85,
        flash_crash_pct: float = _DEFAULTS.flash_crash_pct,
        flash_crash_bars: int = _DEFAULTS.flash_crash_bars,
    ) -> None:
        if history < 60:
            raise ValueError(f"analysis history must be at least 60 bars, got {history}")
        self.history = history
        self.with_h1_bias = with_h1_bias
        self.min_threshold, self.max_threshold = min_threshold, max_threshold
        self.flash_crash_pct, self.flash_crash_bars = flash_crash_pct, flash_crash_bars
        self.set_models(regime, signal)
        self._window: pl.DataFrame | None = None  # the last window analysed
        self._frame: AnalysisFrame | None = None  # its frame, when built

    def set_models(self, regime: RegimeSource | None, signal: SignalSource | None) -> None:
        self.regime, self.signal = regime, signal
        self.incremental = IncrementalAnalysis(
            regime, signal, self.flash_crash_pct, self.flash_crash_bars, self.with_h1_bias
        )

    @property
    def edge(self) -> str:
        """The active strategy's out-of-sample verdict in words, for /status and the start-up message."""
        return strategy_edge(self.signal)

    @property
    def last_frame(self) -> AnalysisFrame | None:
        """The frame of the last window analysed, for /chart overlays; built when first asked for."""
        w, frame = self._window, self._frame
        if w is None:
            return None
        if frame is None or frame.bars is not w:
            frame = self._frame = self._build(w)
        return frame

    def _build(self, w: pl.DataFrame) -> AnalysisFrame:
        return AnalysisFrame.build(
            w,
            self.regime,
            self.signal,
            self.with_h1_bias,
            self.min_threshold,
            self.max_threshold,
            ml_rows=1,
            flash_crash_pct=self.flash_crash_pct,
            flash_crash_bars=self.flash_crash_bars,
        )

    def steps(self, bars: pl.DataFrame) -> bool:
        """Whether analysing `bars` is one step of the carried state (~1-3 ms): the engine then runs it
        on its loop rather than in a worker thread, whose hand-over would cost more than the step."""
        return bars.height >= 2 and self.incremental.will_step(bars)

    def __call__(self, bars: pl.DataFrame) -> MarketAnalysis:
        if bars.height < 2:
            raise ValueError("need at least 2 closed bars to analyse")
        w = bars.tail(self.history) if bars.height > self.history else bars
        row = self.incremental(bars, self.history)
        if row is None:
            frame = self._frame = self._build(w)
            self._window = w
            return frame.at(-1)
        self._window = w
        signal = self.signal
        return compose(
            row,
            meta=signal is not None,
            p_up=None,
            ml_gate=tuple(getattr(signal, "gate", (0.0, None, ""))),
            thresholds=(self.min_threshold, self.max_threshold),
            model_version=signal.version if signal is not None else "",
            strategy_edge=str(getattr(signal, "edge", "")) if signal is not None else "",
        )


class PrecomputedAnalyzer:
    """The backtest's analyzer: one frame for the whole file, looked up by the last closed bar's time.

    The rows are analysed `_AHEAD` at a time (`frame.at`, each handed the setup of the row before) and
    handed out one a bar: the same analyses, built in a run while the frame's lists are at hand rather
    than one between each bar's ticks (the frame is causal: a row reads no row after it)."""

    def __init__(self, frame: AnalysisFrame) -> None:
        self.frame = frame
        self._index = {t: i for i, t in enumerate(frame.times)}
        self._ahead: tuple[int, list[MarketAnalysis]] = (0, [])  # the rows analysed ahead: first, analyses
        self._handed: tuple[pl.DataFrame, int] | None = None  # the last window `window` gave out, its row
        self.last_frame = frame

    @property
    def edge(self) -> str:
        return self.frame.strategy_edge or NO_MODEL_EDGE

    def window(self, bars: pl.DataFrame) -> Callable[[int], pl.DataFrame]:
        """The backtest's window over `bars`: bar b alone (all this analyzer reads is its time). The
        analyzer keeps the frame's row of the window it gave out, so it does not read its time back
        (~2 us a bar) nor look the row up by it when `bars` are the frame's own (bar b is row b). The
        bars are sliced `_AHEAD` at a time, as the analyses are: a slice in a run costs a fraction of
        one made between each bar's ticks."""
        index, own = self._index, bars is self.frame.bars
        times: list[datetime] = [] if own else bars["time"].to_list()
        ahead: list[tuple[int, list[pl.DataFrame]]] = [(0, [])]  # the bars sliced ahead: first, slices

        def one_row(b: int) -> pl.DataFrame:
            first, slices = ahead[0]
            if not first <= b < first + len(slices):
                first, slices = ahead[0] = (b, [bars.slice(k, 1) for k in range(b, b + _AHEAD)])
            w = slices[b - first]
            self._handed = (w, b if own else index[times[b]])
            return w

        return one_row

    def __call__(self, bars: pl.DataFrame) -> MarketAnalysis:
        handed = self._handed
        i = handed[1] if handed is not None and handed[0] is bars else self._index[bars.item(-1, "time")]
        first, analyses = self._ahead
        if not first <= i < first + len(analyses):
            first, analyses = self._ahead = (i, self._rows_from(i))
        return analyses[i - first]

    def _rows_from(self, i: int) -> list[MarketAnalysis]:
        """`frame.at` of rows i.. (up to `_AHEAD` of them)."""
        return self.frame.analyses(i, min(len(self.frame), i + _AHEAD))


_AHEAD = 128  # rows analysed at a time by PrecomputedAnalyzer

NO_MODEL_EDGE = "SMC-only (no model): no demonstrated edge"


def strategy_edge(signal: SignalSource | None) -> str:
    if signal is None:
        return NO_MODEL_EDGE
    return str(getattr(signal, "edge", "")) or NO_MODEL_EDGE
