"""Score a stored model version on any bars: the `evaluate` command's figures, and the setup rows each
bundle sees (its own HMM's regime labels) for the registry's validation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.dataset import Dataset, base_feature_frame, build_dataset, with_regime
from models.edge import (
    METRIC_KEYS,
    BaselineRates,
    baseline_verdict,
    clean_json,
    commission_r,
    edge_verdict,
    gate_takes,
    score_with_baselines,
    time_str,
    trading_figures,
)
from models.ev import EVGate
from models.registry import (
    DEFAULT_MODELS_DIR,
    ModelBundle,
    ModelRegistry,
    RegistryError,
    load_version,
    stored_versions_text,
)
from models.setups import EngineSetups, engine_setups


def bundle_dataset(
    bundle: ModelBundle,
    bars: pl.DataFrame,
    base: pl.DataFrame | None = None,
    setups: EngineSetups | None = None,
) -> Dataset:
    """The clean setup dataset as this bundle sees it (its own HMM's filtered regime labels)."""
    base = base_feature_frame(bars) if base is None else base
    setups = engine_setups(bars) if setups is None else setups
    return build_dataset(
        with_regime(base, bundle.regime.filtered_labels(bars)), setups, features=bundle.signal.feature_names
    )


def recent_window_sample(
    bars: pl.DataFrame, base: pl.DataFrame, setups: EngineSetups, start: np.datetime64
) -> Callable[[ModelBundle], tuple[np.ndarray, np.ndarray]]:
    """For registry validation: the (x, y) setup rows from `start` on, built with each bundle's own regime."""

    def sample(bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray]:
        ds = bundle_dataset(bundle, bars, base, setups)
        keep = ds.times >= start
        return ds.x[keep], ds.y[keep]

    return sample


def evaluate_models(
    bars: pl.DataFrame,
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    registry: ModelRegistry | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Score the active (or a given) version on any bars; metrics plus baselines with its training rates."""
    registry = registry or ModelRegistry(models_dir)
    if version is not None:
        bundle = load_version(registry, version)  # any stored version, rejected too; nothing is activated
    else:
        active = registry.active_version()
        if active is None:
            stored = stored_versions_text(registry)
            raise RegistryError(
                f"no active model in {registry.root}; "
                + (f"pick one with --version (stored: {stored})" if stored else "run `train` first")
            )
        bundle = registry.load(active)
    version = bundle.version
    status = bundle.metadata.get("status")
    ds = bundle_dataset(bundle, bars)
    if len(ds) < 2:
        raise ValueError(
            "too few setups with a known outcome in these bars (need a few hundred bars at least)"
        )
    p = bundle.signal.predict_proba(ds.x)
    rates_d = bundle.metadata.get("baseline_rates")
    rates = (
        BaselineRates(**rates_d) if rates_d and "win_rate" in rates_d else BaselineRates.learn(ds.y, ds.side)
    )
    model, base = score_with_baselines(p, ds.y, ds.side, rates)
    beats, verdict = baseline_verdict(model, base)
    gate = EVGate.from_dict(bundle.metadata["ev_gate"]) if "ev_gate" in bundle.metadata else None
    rows = np.arange(len(ds))
    com = float(bundle.metadata.get("data", {}).get("commission_per_lot", 0.0))
    take = gate_takes(gate, p, ds, rows, com) if gate is not None else np.zeros(len(ds), dtype=bool)
    trading = trading_figures(take, ds.r_multiple - commission_r(ds, rows, com), ds.y)
    train_to = bundle.metadata.get("data", {}).get("train_to")
    overlap = 0
    if train_to:
        overlap = int((ds.times <= np.datetime64(train_to.rstrip("Z"))).sum())
    out = {
        **{k: model[k] for k in METRIC_KEYS},
        "ece": model["ece"],
        "n": model["n"],
        "base_win_rate": round(float(ds.y.mean()), 4),
        "version": version,
        "status": status,
        "from": time_str(ds.times[0]),
        "to": time_str(ds.times[-1]),
        "baselines": base,
        "beats_baselines": beats,
        "trading": trading,
        "verdict": edge_verdict(beats, verdict, trading)["verdict"],
        "rows_inside_training_range": overlap,
    }
    return clean_json(out)
