"""Signal model, metrics, labels and walk-forward splits."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from models import metrics as M
from models.dataset import (
    RAW_PRICE_COLUMNS,
    SIGNAL_FEATURES,
    base_feature_frame,
    build_dataset,
    feature_frame,
    purge,
    walk_forward_splits,
)
from models.regime import RegimeModel
from models.setups import engine_setups
from models.signal import BOOSTER_FILE, Calibration, SignalModel, decide

NAMES = [f"f{i}" for i in range(6)]


def synthetic(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=n) > 0).astype(np.int8)
    return x, y


@pytest.fixture(scope="module")
def model() -> SignalModel:
    x, y = synthetic()
    return SignalModel.fit(x[:2000], y[:2000], x[2000:], y[2000:], NAMES, num_boost_round=30)


# ----------------------------------------------------------------- decisions and metrics


def test_decide_buy_sell_hold_at_the_threshold() -> None:
    assert decide(0.61).action == "BUY"
    assert decide(0.60).action == "HOLD"  # strictly above the threshold
    assert decide(0.39).action == "SELL"
    assert decide(0.5).action == "HOLD"
    s = decide(0.2, threshold=0.75)
    assert (s.action, s.confidence) == ("SELL", pytest.approx(0.8))


def test_metrics_known_answers() -> None:
    p = np.array([0.1, 0.4, 0.35, 0.8])
    y = np.array([0, 0, 1, 1])
    assert M.roc_auc(p, y) == pytest.approx(0.75)
    assert M.accuracy(p, y) == pytest.approx(0.75)
    assert M.brier(p, y) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert M.log_loss(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(np.log(2))
    assert np.isnan(M.roc_auc(np.array([0.3, 0.6]), np.array([1, 1])))
    # two bins: predicted 0.15 with 0 % ups, predicted 0.85 with 100 % ups -> ECE 0.15
    assert M.expected_calibration_error(
        np.array([0.15, 0.15, 0.85, 0.85]), np.array([0, 0, 1, 1])
    ) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="equal length"):
        M.brier(np.array([0.1]), np.array([0, 1]))


def test_platt_calibration_recovers_a_known_slope() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2.0, size=20000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))).astype(int)
    raw = 1 / (1 + np.exp(-0.5 * z))  # an under-confident model
    cal = Calibration.fit("platt", raw, y)
    assert cal.a == pytest.approx(2.0, rel=0.1) and abs(cal.b) < 0.1
    assert M.expected_calibration_error(cal.apply(raw), y) < M.expected_calibration_error(raw, y)


def test_isotonic_calibration_is_monotone_and_round_trips() -> None:
    x, y = synthetic(2000, seed=5)
    raw = 1 / (1 + np.exp(-x[:, 0]))
    cal = Calibration.fit("isotonic", raw, y)
    grid = np.linspace(0, 1, 101)
    out = cal.apply(grid)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(Calibration.from_dict(cal.to_dict()).apply(grid), out)
    with pytest.raises(ValueError, match="unknown"):
        Calibration.fit("beta", raw, y)
    with pytest.raises(ValueError, match="one class"):
        Calibration.fit("platt", raw, np.ones_like(y))
    with pytest.raises(ValueError, match="knots"):
        Calibration.from_dict({"method": "isotonic", "x": [0.5], "y": [0.5]})


# ----------------------------------------------------------------- model


def test_model_learns_a_real_signal_and_is_calibrated(model: SignalModel) -> None:
    x, y = synthetic(2000, seed=9)
    p = model.predict_proba(x)
    assert M.roc_auc(p, y) > 0.75
    assert M.expected_calibration_error(p, y) < 0.06
    assert model.info["ece_valid_calibrated"] <= model.info["ece_valid_raw"]
    assert 1 <= model.booster.num_boosted_rounds() <= 30


def test_predict_row_matches_batch_prediction(model: SignalModel) -> None:
    x, _ = synthetic(5, seed=2)
    batch = model.predict_proba(x)
    for i in range(5):
        assert model.predict_row(x[i]).p_up == pytest.approx(batch[i], abs=1e-6)
    as_map = dict(zip(NAMES, x[0], strict=True))
    assert model.predict_row(as_map).p_up == pytest.approx(batch[0], abs=1e-6)
    nan_row = x[0].copy()
    nan_row[3] = np.nan
    zero_row = x[0].copy()
    zero_row[3] = 0.0
    assert model.predict_row(nan_row).p_up == model.predict_row(zero_row).p_up  # NaN -> 0 as in the spec


def test_predict_row_refuses_bad_rows(model: SignalModel) -> None:
    with pytest.raises(ValueError, match="expected 6"):
        model.predict_row([0.0] * 5)
    with pytest.raises(ValueError, match="'f5' missing"):
        model.predict_row({n: 0.0 for n in NAMES[:5]})
    with pytest.raises(ValueError, match="matrix"):
        model.predict_proba(np.zeros((3, 4)))


def test_save_load_round_trip_native_format(model: SignalModel, tmp_path) -> None:
    model.save(tmp_path)
    assert (tmp_path / BOOSTER_FILE).read_bytes()[:1] == b"{"  # UBJ object, not a pickle stream
    assert not any(p.suffix in (".pkl", ".pickle") for p in tmp_path.iterdir())
    loaded = SignalModel.load(tmp_path, expected_features=NAMES)
    x, _ = synthetic(300, seed=4)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.threshold == model.threshold and loaded.calibration == model.calibration
    with pytest.raises(ValueError, match="do not match"):
        SignalModel.load(tmp_path, expected_features=[*NAMES, "extra"])


def test_fit_refuses_bad_inputs() -> None:
    x, y = synthetic(400)
    with pytest.raises(ValueError, match="one class"):
        SignalModel.fit(x, np.zeros_like(y), x, y, NAMES)
    with pytest.raises(ValueError, match="width"):
        SignalModel.fit(x, y, x, y, NAMES[:3])
    with pytest.raises(ValueError, match="threshold"):
        SignalModel(SignalModel.fit(x, y, x, y, NAMES, num_boost_round=2).booster, NAMES, threshold=0.4)


# ----------------------------------------------------------------- dataset and splits


def test_signal_features_are_stationary_and_carry_the_setup() -> None:
    assert len(set(SIGNAL_FEATURES)) == len(SIGNAL_FEATURES)
    assert not RAW_PRICE_COLUMNS & set(
        SIGNAL_FEATURES
    )  # no price level (ema_9, ema_21, atr, macd ...) is an input
    assert {"side", "risk_atr", "risk_reward", "spread_r", "regime"} <= set(SIGNAL_FEATURES)
    assert not any("target" in f for f in SIGNAL_FEATURES)


def test_features_do_not_change_when_prices_are_scaled(shared_bars: pl.DataFrame) -> None:
    """A $2,000 and a $4,000 market look alike: doubling every price leaves the ATR-scaled features alone."""
    bars = shared_bars.slice(0, 600)
    doubled = bars.with_columns(pl.col(c) * 2.0 for c in ("open", "high", "low", "close"))
    a, b = base_feature_frame(bars), base_feature_frame(doubled)
    for col in ("macd_hist_atr", "ema21_dist_atr", "atr_percent", "returns_5", "dist_from_sma_20"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-6, atol=1e-9, equal_nan=True)


def test_feature_frame_has_no_look_ahead_and_rows_are_setups(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(0, 1200)
    regime = RegimeModel.fit(bars.head(800), seeds=(42,))
    full = feature_frame(bars, regime)
    part = feature_frame(bars.head(700), regime)
    assert part.equals(full.head(700))
    setups = engine_setups(bars)
    ds = build_dataset(full, setups)
    assert len(ds) > 50 and ds.x.shape == (len(ds), len(SIGNAL_FEATURES))
    assert np.isfinite(ds.x).all()
    eligible = setups.frame.filter(pl.col("eligible"))["bar_index"].to_numpy()
    assert set(ds.bar_index) <= set(eligible)  # only setups passing the bar gates are rows
    assert (ds.exit_index > ds.bar_index).all() and (ds.exit_index <= ds.bar_index + setups.horizon).all()
    assert 0 < ds.y.mean() < 1 and (ds.r_multiple[ds.y == 1] > 1).all()  # a win pays ~2 R less the spread


def test_purge_drops_training_rows_whose_trade_reaches_the_next_block(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(0, 1500)
    ds = build_dataset(feature_frame(bars, RegimeModel.fit(bars.head(900), seeds=(42,))), engine_setups(bars))
    split = walk_forward_splits(len(ds), 1, 60, 60, gap=0, min_train=60)[0]
    kept = purge(ds, split.train, split.valid.start)
    assert (ds.exit_index[kept] < ds.bar_index[split.valid.start]).all()
    assert len(kept) < len(split.train) or (
        ds.exit_index[split.train.stop - 1] < ds.bar_index[split.valid.start]
    )


@pytest.mark.parametrize(
    ("n", "folds", "test", "valid", "gap"), [(10_000, 4, 1000, 1000, 50), (3000, 3, 300, 300, 1)]
)
def test_walk_forward_splits_never_overlap_and_keep_the_gap(
    n: int, folds: int, test: int, valid: int, gap: int
) -> None:
    splits = walk_forward_splits(n, folds, test, valid, gap)
    assert len(splits) == folds
    assert splits[-1].test.stop == n
    for a, b in itertools.pairwise(splits):
        assert a.test.stop == b.test.start  # consecutive, non-overlapping test blocks
        assert a.train.stop <= b.train.stop  # expanding window
    for s in splits:
        assert s.train.start == 0
        assert s.valid.start - s.train.stop == gap
        assert s.test.start - s.valid.stop == gap
        assert set(s.train).isdisjoint(s.test) and set(s.valid).isdisjoint(s.test)
        assert len(s.test) == test and len(s.valid) == valid


def test_walk_forward_splits_refuse_bad_requests() -> None:
    with pytest.raises(ValueError, match="negative"):
        walk_forward_splits(10_000, gap=-1)
    with pytest.raises(ValueError, match="too few"):
        walk_forward_splits(3000, n_folds=4, test_size=1000)
