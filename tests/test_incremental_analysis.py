"""The live analyzer's incremental path (trading.live_analysis) equals the full recompute, bar by bar.

The live loop hands the analyzer a sliding window of closed bars each bar; after its first call the
analyzer only steps the new bar from its carried state. What it returns must be exactly what
`AnalysisFrame.build` over the bars since its anchor (the first bar of the window it rebuilt on)
gives for that bar — the backtest's precomputed analysis started there — over thousands of real bars,
with no model and with a model (regime filter and meta-model), and again after anything that is not a
one-bar extension: a gap, a corrected bar, a model swap, a restart.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from trading import smc
from trading.analysis import MarketAnalysis
from trading.analyzer import AnalysisFrame, MarketAnalyzer
from trading.feature_step import FeatureCarry, step_features
from trading.features import FEATURE_COLUMNS, compute_features
from trading.smc_step import SmcCarry

HISTORY = 300
START = 2000  # the first bar analysed (its window starts HISTORY - 1 bars earlier)
STRETCH = 4000  # bars analysed one after the other


def same(got: MarketAnalysis, want: MarketAnalysis, bar: int) -> None:
    """Equal field by field; the regime's probability within 1e-9 (the step sums its rolling windows
    afresh where polars keeps running sums, ~1e-13 apart), its name and label exactly."""
    assert got.regime.name == want.regime.name, f"bar {bar}: regime {got.regime} != {want.regime}"
    assert got.regime.confidence == pytest.approx(want.regime.confidence, abs=1e-9), f"bar {bar}"
    got = dataclasses.replace(got, regime=want.regime)
    if got != want:
        diff = {f.name for f in dataclasses.fields(got) if getattr(got, f.name) != getattr(want, f.name)}
        raise AssertionError(f"bar {bar}: {sorted(diff)} differ: {got} != {want}")


def walk(analyzer: MarketAnalyzer, bars: pl.DataFrame, first: int, last: int) -> dict[int, MarketAnalysis]:
    """The analyzer over the sliding windows a live loop hands it, for bars first..last - 1."""
    return {i: analyzer(bars.slice(max(0, i + 1 - HISTORY), min(i + 1, HISTORY))) for i in range(first, last)}


def reference(bars: pl.DataFrame, anchor: int, last: int, regime=None, signal=None) -> AnalysisFrame:
    return AnalysisFrame.build(bars.slice(anchor, last - anchor), regime, signal)


@pytest.fixture(scope="module")
def slot(shared_bars: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    """A registry's active pair: a regime HMM fitted on real bars and a small XGBoost meta-model."""
    from models.dataset import BAR_FEATURES, SIGNAL_FEATURES, feature_frame
    from models.regime import RegimeModel
    from models.registry import ModelRegistry, ModelSlot
    from models.signal import SignalModel

    regime = RegimeModel.fit(shared_bars.head(800), seeds=(42,))
    # real bars' features (setup columns drawn at random) and a label the trees can split on
    bar = feature_frame(shared_bars.slice(800, 1400), regime).drop_nulls().select(BAR_FEATURES).to_numpy()
    rng = np.random.default_rng(0)
    x = np.hstack([bar, rng.normal(size=(len(bar), len(SIGNAL_FEATURES) - len(BAR_FEATURES)))])
    rsi = x[:, BAR_FEATURES.index("rsi")]
    y = ((rsi > 50) ^ (rng.uniform(size=len(x)) < 0.3)).astype(np.int8)
    cut = len(x) * 3 // 4
    signal = SignalModel.fit(x[:cut], y[:cut], x[cut:], y[cut:], SIGNAL_FEATURES, num_boost_round=20)
    reg = ModelRegistry(tmp_path_factory.mktemp("models"))
    reg.activate(reg.save(regime, signal, {}))
    return ModelSlot(reg.load_active())


def test_feature_step_equals_compute_features_bit_for_bit(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(500, 3000)
    full = compute_features(bars)
    cols = [
        bars[k].to_numpy().astype(np.float64)
        for k in ("open", "high", "low", "close", "tick_volume", "spread")
    ]
    t_us = bars["time"].dt.epoch("us").to_numpy()
    start = 100
    carry = FeatureCarry.of(cols[1][:start], cols[2][:start], cols[3][:start])
    assert carry.ready
    for i in range(start, bars.height):
        row = step_features(carry, *(c[i - 25 : i + 1] for c in cols), t_us[i - 25 : i + 1])
        want = full.row(i, named=True)
        for name in FEATURE_COLUMNS:
            assert row[name] == want[name] or (np.isnan(row[name]) and np.isnan(want[name])), (i, name)


def test_smc_step_equals_analyze_and_signal_at(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(500, 3000)
    events = smc.analyze(bars)
    columns = smc.signal_columns(events)
    o, h, lo, c = (bars[k].to_numpy().astype(np.float64) for k in ("open", "high", "low", "close"))
    start = 100
    carry = SmcCarry.of(o[:start], h[:start], lo[:start], c[:start])
    found = 0
    for i in range(start, bars.height):
        row = carry.step(o[i - 11 : i + 1], h[i - 11 : i + 1], lo[i - 11 : i + 1], c[i - 11 : i + 1])
        want = events.row(i, named=True)
        for name, value in row.items():
            expected = np.nan if want[name] is None else want[name]
            assert value == expected or (np.isnan(value) and np.isnan(expected)), (i, name)
        setup, prev = carry.setups()
        assert setup == smc.signal_at(columns, i) and prev == smc.signal_at(columns, i - 1), i
        found += setup is not None
    assert found > 500  # the stretch has setups of both kinds to compare


def test_incremental_equals_the_full_recompute_without_a_model(shared_bars: pl.DataFrame) -> None:
    analyzer = MarketAnalyzer(history=HISTORY)
    last = START + STRETCH
    got = walk(analyzer, shared_bars, START, last)
    anchor = START + 1 - HISTORY
    frame = reference(shared_bars, anchor, last)
    for i, a in got.items():
        same(a, frame.at(i - anchor), i)
    assert analyzer.incremental.rebuilds == 1 and analyzer.incremental.steps == STRETCH - 1
    assert sum(a.setup is not None for a in got.values()) > 500


def test_incremental_equals_the_full_recompute_with_a_model(shared_bars: pl.DataFrame, slot) -> None:
    from models.live import SlotRegime, SlotSignal

    regime, signal = SlotRegime(slot), SlotSignal(slot)
    analyzer = MarketAnalyzer(regime, signal, history=HISTORY)
    last = START + STRETCH
    got = walk(analyzer, shared_bars, START, last)
    anchor = START + 1 - HISTORY
    frame = reference(shared_bars, anchor, last, regime, signal)
    for i, a in got.items():
        same(a, frame.at(i - anchor), i)
    assert analyzer.incremental.steps == STRETCH - 1
    scored = [a for a in got.values() if a.ml is not None]
    assert len(scored) > 500 and len({round(a.ml.p_win or 0, 6) for a in scored}) > 20
    assert len({a.regime.name for a in got.values()} - {"unknown"}) >= 2  # the filter moves between states
    assert all(a.model_version == slot.current.version for a in got.values())


def test_a_gap_a_corrected_bar_a_model_swap_and_a_restart_rebuild(shared_bars: pl.DataFrame, slot) -> None:
    from models.live import SlotRegime, SlotSignal

    regime, signal = SlotRegime(slot), SlotSignal(slot)
    analyzer = MarketAnalyzer(regime, signal, history=HISTORY)
    bars = shared_bars
    walk(analyzer, bars, 5000, 5100)
    assert analyzer.incremental.rebuilds == 1
    # a gap: bars 5100..5109 never reached the analyzer (a reconnect); bar 5110 rebuilds from its window
    got = walk(analyzer, bars, 5110, 5400)
    assert analyzer.incremental.rebuilds == 2
    anchor = 5110 + 1 - HISTORY
    frame = reference(bars, anchor, 5400, regime, signal)
    for i, a in got.items():
        same(a, frame.at(i - anchor), i)
    # a corrected bar: the broker's history now has another close 50 bars back
    fixed = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 5350)
        .then(pl.col("close") + 0.37)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    window = fixed.slice(5400 + 1 - HISTORY, HISTORY)
    a = analyzer(window)
    assert analyzer.incremental.rebuilds == 3
    same(a, AnalysisFrame.build(window, regime, signal).at(-1), 5400)
    # a model swap (the auto-trainer's): the next bar rebuilds with the new model; none: SMC only
    bundle = slot.swap(None)
    try:
        window = bars.slice(5401 + 1 - HISTORY, HISTORY)
        a = analyzer(window)
        assert analyzer.incremental.rebuilds == 4 and a.ml is None and a.regime.name in ("unknown", "crisis")
        same(a, AnalysisFrame.build(window, regime, signal).at(-1), 5401)
    finally:
        slot.swap(bundle)
    window = bars.slice(5402 + 1 - HISTORY, HISTORY)
    same(analyzer(window), AnalysisFrame.build(window, regime, signal).at(-1), 5402)
    assert analyzer.incremental.rebuilds == 5
    # a restart: a new analyzer anchors at its first window (the seeded recursions then differ from the
    # one that ran on by ~1e-11: a backtest started 400 bars later)
    restarted = MarketAnalyzer(regime, signal, history=HISTORY)
    got = walk(restarted, bars, 5403, 5500)
    anchor = 5403 + 1 - HISTORY
    frame = reference(bars, anchor, 5500, regime, signal)
    for i, a in got.items():
        same(a, frame.at(i - anchor), i)
    assert restarted.incremental.rebuilds == 1


def test_the_h1_bias_is_stepped_too(shared_bars: pl.DataFrame) -> None:
    """The optional H1 gate's bias (the last closed hour's score) from the carried hours."""
    analyzer = MarketAnalyzer(history=HISTORY, with_h1_bias=True)
    first, last = 3000, 4500
    got = walk(analyzer, shared_bars, first, last)
    anchor = first + 1 - HISTORY
    frame = AnalysisFrame.build(shared_bars.slice(anchor, last - anchor), with_h1_bias=True)
    for i, a in got.items():
        same(a, frame.at(i - anchor), i)
    assert analyzer.incremental.rebuilds == 1
    assert {a.h1_bias for a in got.values()} == {-1, 0, 1}


def test_sources_that_cannot_step_recompute_the_window(shared_bars: pl.DataFrame) -> None:
    """A direction model (predict_frame only) keeps the window recompute, as before."""

    class Direction:
        version = "dir-1"

        def predict_frame(self, bars: pl.DataFrame) -> np.ndarray:
            return np.linspace(0.2, 0.8, bars.height)

    analyzer = MarketAnalyzer(signal=Direction(), history=HISTORY)
    for i in range(3000, 3010):
        window = shared_bars.slice(i + 1 - HISTORY, HISTORY)
        assert analyzer(window) == AnalysisFrame.build(window, signal=Direction()).at(-1)
        assert not analyzer.steps(window)
    assert analyzer.incremental.rebuilds == 0
    assert analyzer.last_frame is not None and analyzer.last_frame.bars.height == HISTORY


def test_short_history_recomputes_until_the_warm_up_is_over(shared_bars: pl.DataFrame) -> None:
    """A fresh start: windows shorter than the warm-up are recomputed; then the state is anchored at bar 0."""
    analyzer = MarketAnalyzer(history=HISTORY)
    got = {i: analyzer(shared_bars.head(i + 1)) for i in range(20, 400)}
    frame = AnalysisFrame.build(shared_bars.head(400))
    for i, a in got.items():
        same(a, frame.at(i), i)
    assert analyzer.incremental.rebuilds == 1
    assert analyzer.last_frame is not None  # /chart's frame, built when asked for


def test_a_step_that_raises_leaves_no_half_state(shared_bars: pl.DataFrame, slot) -> None:
    """A model that raises mid-step (a broken bundle) fails that bar; the next bar rebuilds, and is right."""
    from models.live import SlotRegime, SlotSignal

    regime, signal = SlotRegime(slot), SlotSignal(slot)
    analyzer = MarketAnalyzer(regime, signal, history=HISTORY)
    walk(analyzer, shared_bars, 6000, 6050)
    setup_bar = next(i for i in range(6050, 6200) if analyzer(window_at(shared_bars, i)).setup is not None)
    broken = {"calls": 0}
    real = signal.predict_row

    def fails_once(*args: object) -> float:
        broken["calls"] += 1
        if broken["calls"] == 1:
            raise RuntimeError("booster gone")
        return real(*args)  # type: ignore[arg-type]

    signal.predict_row = fails_once  # type: ignore[method-assign]
    bar = next(i for i in range(setup_bar + 1, 6400) if _has_setup(shared_bars, i))
    walk(analyzer, shared_bars, setup_bar + 1, bar)
    rebuilds = analyzer.incremental.rebuilds
    with pytest.raises(RuntimeError, match="booster gone"):
        analyzer(window_at(shared_bars, bar))
    a = analyzer(window_at(shared_bars, bar + 1))
    assert analyzer.incremental.rebuilds == rebuilds + 1
    same(a, AnalysisFrame.build(window_at(shared_bars, bar + 1), regime, signal).at(-1), bar + 1)


def window_at(bars: pl.DataFrame, i: int) -> pl.DataFrame:
    return bars.slice(i + 1 - HISTORY, HISTORY)


def _has_setup(bars: pl.DataFrame, i: int) -> bool:
    return AnalysisFrame.build(window_at(bars, i)).setup_at(HISTORY - 1) is not None
