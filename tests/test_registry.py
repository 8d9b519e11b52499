"""Model registry: versions, metadata, validation, activation, rollback, pruning, refusal of stale features."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from models.dataset import SIGNAL_FEATURES
from models.regime import RegimeModel
from models.registry import ACTIVE_FILE, ModelRegistry, ModelSlot, RegistryError
from models.signal import BOOSTER_FILE, SignalModel

N = len(SIGNAL_FEATURES)


def sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N))
    y = (x[:, 0] + rng.normal(scale=0.7, size=n) > 0).astype(np.int8)
    return x, y


def fit_signal(y_sign: int, seed: int) -> SignalModel:
    """y_sign=+1 learns the real relation; -1 learns it backwards (a bad model)."""
    x, y = sample(1500, seed)
    if y_sign < 0:
        y = 1 - y
    return SignalModel.fit(x[:1000], y[:1000], x[1000:], y[1000:], SIGNAL_FEATURES, num_boost_round=10)


@pytest.fixture(scope="module")
def regime(shared_bars: pl.DataFrame) -> RegimeModel:
    return RegimeModel.fit(shared_bars.head(600), seeds=(42,))


@pytest.fixture(scope="module")
def good() -> SignalModel:
    return fit_signal(+1, 1)


@pytest.fixture(scope="module")
def bad() -> SignalModel:
    return fit_signal(-1, 2)


def test_save_writes_a_version_with_metadata_and_no_pickle(tmp_path, regime, good) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(regime, good, {"metrics": {"auc": 0.55}, "data": {"from": "a", "to": "b"}})
    assert v == "v001" and reg.versions() == ["v001"] and reg.active_version() is None
    meta = reg.metadata(v)
    assert meta["feature_names"] == list(SIGNAL_FEATURES)
    assert meta["status"] == "candidate" and meta["metrics"]["auc"] == 0.55 and "created_at" in meta
    assert set(meta["libraries"]) >= {"xgboost", "hmmlearn"}
    files = {p.name for p in (tmp_path / v).iterdir()}
    assert files == {BOOSTER_FILE, "signal.json", "regime.json", "metadata.json"}
    assert reg.save(regime, good, {}) == "v002"


def test_load_round_trip_gives_equal_predictions(tmp_path, regime, good, shared_bars) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(regime, good, {})
    bundle = reg.load(v)
    x, _ = sample(200, 7)
    np.testing.assert_array_equal(bundle.signal.predict_proba(x), good.predict_proba(x))
    bars = shared_bars.slice(1000, 300)
    np.testing.assert_array_equal(bundle.regime.filtered_labels(bars), regime.filtered_labels(bars))


def test_activate_and_rollback(tmp_path, regime, good, bad) -> None:
    reg = ModelRegistry(tmp_path)
    v1, v2 = reg.save(regime, good, {}), reg.save(regime, bad, {})
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    assert reg.activate(v1, by="test") is None
    assert reg.activate(v2, by="test") == v1
    assert reg.active_version() == v2 and reg.metadata(v1)["status"] == "retired"
    assert reg.rollback(by="chat") == v1
    assert reg.active_version() == v1
    assert reg.metadata(v2)["status"] == "rolled_back" and reg.metadata(v1)["status"] == "active"
    pointer = json.loads((tmp_path / ACTIVE_FILE).read_text())
    assert pointer["by"] == "chat" and pointer["rolled_back_from"] == v2
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_validate_compares_with_the_active_on_the_same_rows(tmp_path, regime, good, bad) -> None:
    reg = ModelRegistry(tmp_path)
    v_bad, v_good = reg.save(regime, bad, {}), reg.save(regime, good, {})
    x, y = sample(800, 11)
    first = reg.validate(v_bad, (x, y))
    assert first.ok and "no other active" in first.reason
    reg.activate(v_bad)
    better = reg.validate(v_good, (x, y))
    assert better.ok and better.candidate_auc > better.active_auc
    reg.activate(v_good)
    worse = reg.validate(v_bad, (x, y), margin=0.01)
    assert not worse.ok and "worse than active" in worse.reason
    floor = reg.validate(v_good, (x, y), min_auc=0.99)
    assert not floor.ok and "below the floor" in floor.reason
    one_class = reg.validate(v_good, (x, np.ones_like(y)))
    assert not one_class.ok and "one class" in one_class.reason
    called = []
    reg.validate(v_bad, lambda bundle: called.append(bundle.version) or (x, y))
    assert called == [v_bad, v_good]  # each bundle builds its own rows


def test_broken_or_stale_versions_are_refused(tmp_path, regime, good) -> None:
    reg = ModelRegistry(tmp_path)
    v1, v2 = reg.save(regime, good, {}), reg.save(regime, good, {})
    (tmp_path / v1 / BOOSTER_FILE).unlink()
    x, y = sample(300, 3)
    result = reg.validate(v1, (x, y))
    assert not result.ok and "cannot load" in result.reason
    with pytest.raises(RegistryError, match="cannot be loaded"):
        reg.activate(v1)
    meta = json.loads((tmp_path / v2 / "metadata.json").read_text())
    meta["feature_names"] = meta["feature_names"][:-1]
    (tmp_path / v2 / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(RegistryError, match="different feature list"):
        reg.load(v2)
    with pytest.raises(RegistryError, match="not found"):
        reg.load("v009")
    with pytest.raises(RegistryError, match="bad version"):
        reg.load("../etc")
    assert reg.active_version() is None


def test_reject_keeps_the_version_with_its_reason(tmp_path, regime, good) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(regime, good, {})
    reg.reject(v, "AUC 0.49 worse than active")
    meta = reg.metadata(v)
    assert meta["status"] == "rejected" and meta["rejected_reason"] == "AUC 0.49 worse than active"


def test_prune_keeps_the_newest_the_active_and_the_rollback_target(tmp_path, regime, good) -> None:
    reg = ModelRegistry(tmp_path, keep=2)
    v1 = reg.save(regime, good, {})
    reg.activate(v1)
    v2 = reg.save(regime, good, {})
    reg.activate(v2)
    for _ in range(3):
        reg.save(regime, good, {})
    v6 = reg.save(regime, good, {})
    reg.activate(v6)
    assert reg.versions() == [v2, "v005", v6]  # v2 is kept for rollback, v1/v3/v4 are pruned
    assert reg.rollback() == v2
    with pytest.raises(ValueError, match="keep"):
        ModelRegistry(tmp_path, keep=1)


def test_save_refuses_a_model_with_other_features(tmp_path, regime) -> None:
    x, y = sample(400, 5)
    other = SignalModel.fit(x[:, :3], y, x[:, :3], y, ["a", "b", "c"], num_boost_round=2)
    with pytest.raises(RegistryError, match="feature list"):
        ModelRegistry(tmp_path).save(regime, other, {})
    assert ModelRegistry(tmp_path).versions() == []


def test_model_slot_swaps_in_one_step(tmp_path, regime, good) -> None:
    reg = ModelRegistry(tmp_path)
    reg.activate(reg.save(regime, good, {}))
    slot = ModelSlot()
    assert slot.current is None
    bundle = reg.load_active()
    assert slot.swap(bundle) is None and slot.current is bundle


def test_live_scoring_matches_the_training_rows(tmp_path, regime, good, shared_bars) -> None:
    """Train/serve agreement: the live path scores a setup exactly as the dataset row of that setup."""
    from models.dataset import build_dataset, feature_frame
    from models.live import SlotSignal, predict_latest
    from models.setups import engine_setups

    reg = ModelRegistry(tmp_path)
    reg.activate(reg.save(regime, good, {}))
    bundle = reg.load_active()
    bars = shared_bars.slice(2000, 700)
    ds = build_dataset(feature_frame(bars, regime), engine_setups(bars))
    assert len(ds) > 20
    frame_p = SlotSignal(ModelSlot(bundle)).predict_frame(bars)
    np.testing.assert_allclose(frame_p[ds.bar_index], good.predict_proba(ds.x), atol=1e-6)
    i = int(ds.bar_index[-1])
    live = predict_latest(bundle, bars.head(i + 1))
    assert live.version == "v001" and live.signal is not None and live.reason == ""
    p_win = float(good.predict_proba(ds.x[-1:])[0])
    assert live.signal.p_up == pytest.approx(p_win if ds.side[-1] > 0 else 1 - p_win, abs=1e-6)
    assert live.regime.label == int(regime.filtered_labels(bars.head(i + 1))[-1])
    no_setup = next(j for j in range(i + 1, bars.height) if np.isnan(frame_p[j]))
    assert predict_latest(bundle, bars.head(no_setup + 1)).signal is None
    cold = predict_latest(bundle, shared_bars.slice(2000, 100))
    assert cold.signal is None and cold.regime.name == "unknown"
