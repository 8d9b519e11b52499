"""`PrecomputedAnalyzer` (the backtest's analyzer) analyses its rows a run at a time ahead of the bar asking:
each bar's analysis, asked in order, with gaps, backwards and at the frame's end, is `frame.at` of that
row read alone on a frame of its own; the window handed out for a bar is that bar alone, however far
ahead it was sliced."""

from __future__ import annotations

import random

import polars as pl

import trading.analyzer as analyzer
from trading.analyzer import AnalysisFrame, PrecomputedAnalyzer
from trading.synthetic import generate_bars


def test_analyses_handed_out_equal_the_frame_rows_in_any_order() -> None:
    bars = generate_bars(1_200, seed=5)
    precomputed = PrecomputedAnalyzer(AnalysisFrame.build(bars))
    window = precomputed.window(bars)
    n, ahead = bars.height, analyzer._AHEAD
    rng = random.Random(2)
    asked = [
        *range(0, 3 * ahead + 7),  # in order, across runs
        *range(3 * ahead + 20, 5 * ahead, 3),  # with gaps
        ahead + 5,  # back into a run already handed out
        ahead + 4,
        *rng.sample(range(n), 40),
        *range(n - ahead // 2, n),  # the frame's end: a short run
    ]
    reference = AnalysisFrame.build(bars)  # each row read alone, its previous setup looked up
    for b in asked:
        w = window(b)  # sliced a run of bars ahead: still bar b alone
        assert w.equals(bars.slice(b, 1)), b
        assert precomputed(w) == reference.at(b), b


def test_a_window_it_did_not_hand_out_is_read_by_its_last_time() -> None:
    bars = generate_bars(400, seed=9)
    frame = AnalysisFrame.build(bars)
    precomputed = PrecomputedAnalyzer(frame)
    history: pl.DataFrame = bars.head(301)  # a caller's own window: its last bar is row 300
    assert precomputed(history) == AnalysisFrame.build(bars).at(300)


def test_a_window_over_other_bars_hands_out_the_rows_of_their_times() -> None:
    bars = generate_bars(700, seed=12)
    frame = AnalysisFrame.build(bars)
    precomputed = PrecomputedAnalyzer(frame)
    tail = bars.tail(300)  # not the frame's own bars: bar b of the tail is row 400 + b of the frame
    window = precomputed.window(tail)
    reference = AnalysisFrame.build(bars)
    for b in (0, 1, 150, 299, 7):
        assert precomputed(window(b)) == reference.at(400 + b), b
    own = precomputed.window(bars)  # the frame's own bars: bar b is row b
    for b in (650, 3, 399):
        assert precomputed(own(b)) == reference.at(b), b
