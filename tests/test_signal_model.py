"""Signal model, metrics, labels and walk-forward splits."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from models import metrics as M
from models.dataset import (
    SIGNAL_FEATURES,
    add_label,
    build_dataset,
    feature_frame,
    walk_forward_splits,
)
from models.regime import RegimeModel
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
    assert M.expected_calibration_error(np.array([0.15, 0.15, 0.85, 0.85]), np.array([0, 0, 1, 1])) == pytest.approx(0.15)
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


def test_label_looks_one_bar_ahead_and_the_tail_is_dropped() -> None:
    frame = pl.DataFrame({"close": [10.0, 11.0, 10.5, 10.5, 12.0]})
    out = add_label(frame)
    assert out["target"].to_list() == [1, 0, 0, 1, None]  # an unchanged close is not "up"
    assert out["target_return"][0] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="horizon"):
        add_label(frame, horizon=0)


def test_signal_features_are_the_spec_list() -> None:
    assert len(SIGNAL_FEATURES) == 37 and len(set(SIGNAL_FEATURES)) == 37
    assert SIGNAL_FEATURES[0] == "rsi" and SIGNAL_FEATURES[-1] == "regime"
    assert not any("target" in f for f in SIGNAL_FEATURES)


def test_feature_frame_has_no_look_ahead(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.slice(0, 1200)
    regime = RegimeModel.fit(bars.head(800), seeds=(42,))
    full = feature_frame(bars, regime)
    part = feature_frame(bars.head(700), regime)
    assert part.equals(full.head(700))
    ds = build_dataset(full)
    assert ds.x.shape == (len(ds), 37)
    assert ds.bar_index[0] >= 112 and ds.bar_index[-1] == bars.height - 2  # warm-up and unlabeled tail dropped
    assert np.isfinite(ds.x).all()
    closes = bars["close"].to_numpy()
    np.testing.assert_array_equal(ds.y, (closes[ds.bar_index + 1] > closes[ds.bar_index]).astype(np.int8))


@pytest.mark.parametrize(("n", "folds", "test", "valid", "gap"), [(10_000, 4, 1000, 1000, 50), (3000, 3, 300, 300, 1)])
def test_walk_forward_splits_never_overlap_and_keep_the_gap(n: int, folds: int, test: int, valid: int, gap: int) -> None:
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
    with pytest.raises(ValueError, match="label horizon"):
        walk_forward_splits(10_000, gap=0)
    with pytest.raises(ValueError, match="too few"):
        walk_forward_splits(3000, n_folds=4, test_size=1000)
