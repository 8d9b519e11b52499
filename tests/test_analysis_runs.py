"""`AnalysisFrame.analyses` composes a run of rows at once (the backtest's analyzer asks for 128 at a time):
each row of any run, across the row lists' chunk edges and at the frame's start, equals the row composed
alone from its own fields read off the frame's columns (regime, meta-model, H1 bias and crisis rows
included)."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest

import trading.analyzer as analyzer
from trading.analysis import MarketAnalysis, close_move_pct
from trading.analysis_compose import compose
from trading.analyzer import AnalysisFrame
from trading.live_analysis import INDICATOR_COLUMNS, BarRow, regime_pick
from trading.sessions import session_at
from trading.synthetic import generate_bars


@pytest.fixture(scope="module")
def frame() -> AnalysisFrame:
    bars = generate_bars(3_000, seed=21)
    f = AnalysisFrame.build(bars, with_h1_bias=True, flash_crash_pct=0.4)
    rng = np.random.default_rng(8)
    probs = rng.dirichlet([1, 1, 1], bars.height)
    probs[::53] = np.nan  # rows where the regime is unknown
    f.regime_probs = probs
    p_win = rng.uniform(0.2, 0.8, bars.height)
    p_win[::7] = np.nan
    f.p_win = p_win
    f.ml_gate = (0.45, 0.4, "fitted")
    return f


def alone(frame: AnalysisFrame, i: int) -> MarketAnalysis:
    """Row i composed from its own fields, read off the frame's numpy columns one by one."""
    cols = frame.columns
    close = cols["close"]
    state, confidence = regime_pick(None if frame.regime_probs is None else frame.regime_probs[i])
    time = frame.bars["time"][i]
    assert frame.p_win is not None and frame.h1 is not None
    row = BarRow(
        time=time,
        close=float(close[i]),
        high=float(cols["high"][i]),
        low=float(cols["low"][i]),
        spread=float(cols["spread"][i]),
        indicators=tuple(float(cols[k][i]) for k in INDICATOR_COLUMNS),
        crisis=close_move_pct(close[: i + 1], frame.flash_crash_bars) >= frame.flash_crash_pct,
        regime_state=state,
        regime_confidence=confidence,
        setup=frame.setup_at(i),
        prev_setup=frame.setup_at(i - 1) if i > 0 else None,
        p_win=float(frame.p_win[i]),
        recent_closes=tuple(float(c) for c in close[max(0, i - 24) : i + 1]),
        h1_bias=int(frame.h1[i]),
    )
    return compose(
        row,
        meta=True,
        p_up=None,
        ml_gate=frame.ml_gate,
        thresholds=(frame.min_threshold, frame.max_threshold),
        model_version=frame.model_version,
        strategy_edge=frame.strategy_edge,
        session=session_at(time + timedelta(minutes=15)),
    )


def test_every_run_of_rows_equals_its_rows_composed_alone(
    frame: AnalysisFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyzer, "_ROW_CHUNK", 500)  # several chunks of row lists in the frame
    frame._rows = None
    n = len(frame)
    rng = random.Random(4)
    runs = [(0, 1), (0, 130), (5, 5), (480, 620), (990, 1010), (n - 40, n), (n - 1, n)]
    runs += [(a, min(n, a + rng.randint(1, 700))) for a in rng.sample(range(n), 12)]
    assert any(a < 500 * k < b for a, b in runs for k in range(1, 6)), "a run across a chunk edge"
    for first, last in runs:
        got = frame.analyses(first, last)
        assert len(got) == last - first
        for k, a in enumerate(got):
            assert a == alone(frame, first + k), first + k
    assert any(a.regime.name == "crisis" for a in frame.analyses(0, n))
    assert any(a.ml is not None for a in frame.analyses(0, n))


def test_at_is_the_run_of_one_row(frame: AnalysisFrame) -> None:
    for i in (0, 1, 700, len(frame) - 1):
        assert frame.at(i) == frame.analyses(i, i + 1)[0] == alone(frame, i)
    assert frame.at(-1) == alone(frame, len(frame) - 1)
