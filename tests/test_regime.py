"""HMM regime: volatility ordering, causal filtering, persistence, crisis override."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from models.regime import (
    CRISIS,
    REGIME_INPUTS,
    RegimeModel,
    _forward_filter,
    flash_crash_move_pct,
    regime_inputs,
    state_shares,
)
from trading.bars import validate_bars


def make_bars(closes: list[float] | np.ndarray, spread: float = 0.5) -> pl.DataFrame:
    closes = np.asarray(closes, dtype=float)
    opens = np.concatenate([[closes[0]], closes[:-1]])
    t0 = datetime(2025, 1, 6, tzinfo=UTC)
    return validate_bars(
        pl.DataFrame(
            {
                "time": [t0 + timedelta(minutes=15 * i) for i in range(len(closes))],
                "open": opens,
                "high": np.maximum(opens, closes) + spread,
                "low": np.minimum(opens, closes) - spread,
                "close": closes,
                "tick_volume": np.full(len(closes), 100, dtype=np.int64),
                "spread": np.full(len(closes), 20, dtype=np.int32),
                "real_volume": np.zeros(len(closes), dtype=np.int64),
            }
        ).with_columns(pl.col("time").dt.cast_time_unit("us"))
    )


@pytest.fixture(scope="module")
def train_bars(shared_bars: pl.DataFrame) -> pl.DataFrame:
    return shared_bars.slice(0, 3000)


@pytest.fixture(scope="module")
def model(train_bars: pl.DataFrame) -> RegimeModel:
    return RegimeModel.fit(train_bars, seeds=(42, 59))


def test_forward_filter_matches_brute_force_marginals() -> None:
    rng = np.random.default_rng(1)
    k, n = 2, 5
    start = np.array([0.6, 0.4])
    trans = np.array([[0.9, 0.1], [0.3, 0.7]])
    emis = rng.uniform(0.05, 1.0, size=(n, k))
    got = np.exp(_forward_filter(np.log(emis), np.log(start), np.log(trans)))
    for t in range(n):
        joint = np.zeros(k)
        for path in itertools.product(range(k), repeat=t + 1):
            p = start[path[0]] * emis[0, path[0]]
            for s in range(1, t + 1):
                p *= trans[path[s - 1], path[s]] * emis[s, path[s]]
            joint[path[-1]] += p
        np.testing.assert_allclose(got[t], joint / joint.sum(), rtol=1e-10)


def test_regime_inputs_known_values_on_a_steady_rise() -> None:
    bars = make_bars(100.0 + np.arange(150, dtype=float))
    inputs = regime_inputs(bars)
    assert inputs.columns == list(REGIME_INPUTS)
    last = inputs.row(-1, named=True)
    assert last["rsi_deviation"] == pytest.approx(1.0)  # no losses: RSI 100
    assert last["log_returns"] == pytest.approx(np.log(249 / 248))
    # warm-up: vol_regime needs ATR(14) then 100 bars of it
    assert inputs["vol_regime"].is_null().sum() == 13 + 99
    assert inputs["volatility_100"][99] is None and inputs["volatility_100"][100] is not None


def test_states_are_ordered_by_volatility_for_every_seed(train_bars: pl.DataFrame) -> None:
    labels = []
    for seed in (42, 59, 76):
        m = RegimeModel.fit(train_bars, seeds=(seed,))
        assert np.all(np.diff(m.means[:, 1]) > 0), "volatility_20 mean must rise low -> medium -> high"
        labels.append(m.filtered_labels(train_bars))
    # realised 20-bar volatility rises with the label, whatever the seed
    vol20 = regime_inputs(train_bars)["volatility_20"].to_numpy()
    for lab in labels:
        vols = [np.nanmean(vol20[lab == k]) for k in range(3)]
        assert vols[0] < vols[1] < vols[2]
    agree = np.mean(labels[0][labels[0] >= 0] == labels[1][labels[1] >= 0])
    assert agree > 0.7


def test_filtered_labels_are_prefix_invariant(model: RegimeModel, shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(3000, 1500)
    full_p = model.filtered_probabilities(bars)
    full_l = model.filtered_labels(bars)
    for k in (120, 400, 999, 1500):
        prefix = bars.head(k)
        np.testing.assert_allclose(model.filtered_probabilities(prefix), full_p[:k], rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(model.filtered_labels(prefix), full_l[:k])
        latest = model.latest(prefix)
        assert latest.label == full_l[k - 1]


def test_changing_future_bars_never_changes_past_labels(
    model: RegimeModel, shared_bars: pl.DataFrame
) -> None:
    bars = shared_bars.slice(5000, 800)
    base = model.filtered_labels(bars)
    shocked = bars.with_columns(
        pl.when(pl.int_range(pl.len()) >= 600).then(pl.col(c) * 1.03).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    )
    np.testing.assert_array_equal(model.filtered_labels(shocked)[:600], base[:600])


def test_warm_up_rows_are_unknown(model: RegimeModel, shared_bars: pl.DataFrame) -> None:
    labels = model.filtered_labels(shared_bars.head(200))
    assert (labels[:112] == -1).all() and (labels[113:] >= 0).all()
    reading = model.latest(shared_bars.head(100))
    assert reading.name == "unknown" and reading.lot_multiplier == 0.5


def test_save_load_round_trip_gives_equal_predictions(
    model: RegimeModel, shared_bars: pl.DataFrame, tmp_path
) -> None:
    path = tmp_path / "regime.json"
    model.save(path)
    loaded = RegimeModel.load(path)
    bars = shared_bars.slice(4000, 600)
    np.testing.assert_array_equal(loaded.filtered_probabilities(bars), model.filtered_probabilities(bars))
    assert loaded.seed == model.seed and loaded.n_train == model.n_train


def test_load_refuses_bad_parameters(model: RegimeModel) -> None:
    data = model.to_dict()
    with pytest.raises(ValueError, match="inputs"):
        RegimeModel.from_dict({**data, "inputs": ["log_returns"]})
    with pytest.raises(ValueError, match="shape"):
        RegimeModel.from_dict({**data, "means": [[0.0] * 8] * 2})
    with pytest.raises(ValueError, match="non-positive"):
        RegimeModel.from_dict({**data, "variances": [[0.0] * 8] * 3})


def test_fit_refuses_too_few_rows(shared_bars: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="usable rows"):
        RegimeModel.fit(shared_bars.head(250), seeds=(42,))
    with pytest.raises(ValueError, match="seed"):
        RegimeModel.fit(shared_bars.head(500), seeds=())


def test_regimes_carry_lot_multiplier_and_recommendation(
    model: RegimeModel, shared_bars: pl.DataFrame
) -> None:
    reading = model.latest(shared_bars.slice(0, 400))
    expected = {"low": (1.0, "TRADE"), "medium": (1.0, "TRADE"), "high": (0.5, "REDUCE")}
    assert (reading.lot_multiplier, reading.recommendation) == expected[reading.name]
    assert sum(reading.probabilities) == pytest.approx(1.0)
    view = reading.to_view()
    assert view.label == reading.label and view.recommendation == reading.recommendation


def test_flash_crash_overrides_to_crisis(model: RegimeModel, shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(0, 300)
    closes = bars["close"].to_numpy().copy()
    closes[-1] = closes[-5] * 0.97  # -3 % over the last five bars
    crashed = bars.with_columns(
        close=pl.Series(closes),
        low=pl.Series(np.minimum(bars["low"].to_numpy(), closes)),
    )
    reading = model.latest(crashed)
    assert reading.spec == CRISIS and reading.recommendation == "SLEEP" and reading.lot_multiplier == 0.0
    assert reading.move_pct == pytest.approx(3.0)
    assert model.latest(bars).spec != CRISIS


def test_flash_crash_move_and_state_shares() -> None:
    assert flash_crash_move_pct(np.array([100.0, 101.0, 102.5]), bars=5) == pytest.approx(2.5)
    assert flash_crash_move_pct(np.array([100.0])) == 0.0
    assert flash_crash_move_pct(np.array([1.0, 100.0, 99.0, 98.0, 97.0, 97.0])) == pytest.approx(3.0)
    assert state_shares(np.array([-1, 0, 0, 1, 2], dtype=np.int8)) == {
        "low": 0.5,
        "medium": 0.25,
        "high": 0.25,
    }
