"""`AnalysisFrame.at` reads its rows from Python lists built a chunk at a time (so a long frame's lists
do not grow with its length): every row, read in order, backwards and at random, equals the row read
from lists built over the whole frame at once, across chunk edges and at the frame's start."""

from __future__ import annotations

import random

import numpy as np
import pytest

import trading.analyzer as analyzer
from trading.analyzer import AnalysisFrame
from trading.synthetic import generate_bars


@pytest.fixture(scope="module")
def frame() -> AnalysisFrame:
    bars = generate_bars(9_000, seed=11)
    f = AnalysisFrame.build(bars)
    probs = np.random.default_rng(3).dirichlet([1, 1, 1], bars.height)
    probs[::97] = np.nan  # rows where the regime is unknown
    f.regime_probs = probs
    return f


def test_rows_read_by_chunk_equal_rows_read_from_the_whole_frame(
    frame: AnalysisFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = len(frame)
    chunk = analyzer._ROW_CHUNK
    assert n > 2 * chunk
    edges = [i for c in range(1, n // chunk + 1) for i in range(c * chunk - 30, c * chunk + 30) if i < n]
    picks = [*range(0, 40), *edges, *random.Random(5).sample(range(n), 300)]
    chunked = {i: frame.at(i) for i in picks}
    backwards = {i: frame.at(i) for i in reversed(picks)}
    monkeypatch.setattr(analyzer, "_ROW_CHUNK", 10 * n)  # one chunk: the whole frame
    frame._rows = None
    for i in picks:
        whole = frame.at(i)
        assert chunked[i] == whole, i
        assert backwards[i] == whole, i
