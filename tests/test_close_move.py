"""The bar flash-crash measure, asked twice a bar for the same closes (the engine's emergency check and
the entry gate): the second answer is the first, and a measure of other closes or bars is its own."""

from __future__ import annotations

import numpy as np

from trading.analysis import close_move_pct


def _fresh(closes: list[float], bars: int) -> float:
    window = closes[-bars:]
    return 0.0 if len(window) < 2 or window[0] <= 0 else abs(window[-1] / window[0] - 1) * 100


def test_each_measure_is_of_its_own_closes_and_window() -> None:
    rng = np.random.default_rng(5)
    tuples = [tuple(float(x) for x in 3300 + rng.normal(0, 40, 8)) for _ in range(20)]
    tuples += [(), (3300.0,), (0.0, 3300.0), (3300.0, 3300.0)]
    for closes in tuples:
        for bars in (5, 2, 5, 1, 8, 0):
            assert close_move_pct(closes, bars) == _fresh(list(closes), bars)
            assert close_move_pct(closes, bars) == _fresh(list(closes), bars)  # asked again
        same_values = tuple(list(closes))
        assert close_move_pct(same_values, 5) == _fresh(list(closes), 5)


def test_an_array_changed_between_two_measures_is_measured_again() -> None:
    closes = np.array([3300.0, 3310.0, 3320.0, 3330.0, 3340.0])
    first = close_move_pct(closes, 5)
    closes[-1] = 3500.0
    assert close_move_pct(closes, 5) == _fresh(closes.tolist(), 5) != first
