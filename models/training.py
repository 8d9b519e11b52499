"""Train both models with honest walk-forward numbers and store the candidate in the registry.

The signal model is a meta-model: P(win | setup, features) for the setups the engine would take,
labelled by their own stop, take-profit and time limit (`models.dataset`). Every fold refits the HMM
and the booster on setup rows before its test block only (expanding window, purged gaps, early
stopping, calibration and the EV gate's probability floor on a validation slice that precedes the
test block). The model of the last fold, whose test block ends at the newest setup, is the candidate
written to the registry.

Metrics are reported next to naive baselines learned on the training rows: the base win rate of
setups, and the win rate per side. A version goes live by itself only when it has a demonstrated
edge out of sample: it beats both baselines on AUC and log loss over the pooled test blocks *and*
in more than half of the folds, *and* the setups its EV gate lets through made more R per trade
than taking every setup (one-sided t > 1.645) and more than zero (`models.edge`). Otherwise it is
stored, not activated, unless `force` (`train --activate`) says so. The `train` and `evaluate`
commands are in `models.train_commands`, scoring any bars in `models.evaluation`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models import metrics as M
from models.dataset import (
    DEFAULT_GAP,
    LABEL_DEFINITION,
    SIGNAL_FEATURES,
    Dataset,
    Split,
    base_feature_frame,
    build_dataset,
    purge,
    walk_forward_splits,
    with_regime,
)
from models.edge import (
    METRIC_KEYS,
    BaselineRates,
    FoldResult,
    baseline_verdict,
    clean_json,
    commission_r,
    edge_verdict,
    fold_mean,
    folds_beaten,
    gate_takes,
    rounded,
    score_with_baselines,
    time_str,
    trading_figures,
)
from models.ev import EVGate, fit_ev_gate
from models.evaluation import bundle_dataset as bundle_dataset  # re-exported: research and bench read it here
from models.evaluation import recent_window_sample
from models.regime import DEFAULT_SEEDS, RegimeModel, state_shares
from models.registry import DEFAULT_MODELS_DIR, ModelRegistry
from models.setups import EngineSetups, engine_setups
from models.signal import DEFAULT_THRESHOLD, NUM_BOOST_ROUND, SignalModel

ProgressFn = Callable[[str, float], None]
FORCE_HINT = "stored, not activated; activate it anyway with `train --activate`"


def _noop(stage: str, percent: float) -> None:
    return None


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrainReport:
    version: str | None
    activated: bool
    activation_reason: str
    regime: dict[str, Any]
    signal: dict[str, Any]
    data: dict[str, Any]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    edge: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return clean_json(asdict(self))


def data_fingerprint(bars: pl.DataFrame) -> str:
    h = hashlib.sha256()
    for col in ("time", "open", "high", "low", "close"):
        h.update(bars[col].to_physical().to_numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class FoldModel:
    regime: RegimeModel
    signal: SignalModel
    p_test: np.ndarray
    gate: EVGate
    train_idx: np.ndarray


def _fit_fold(
    bars: pl.DataFrame,
    base: pl.DataFrame,
    setups: EngineSetups,
    ds: Dataset,
    split: Split,
    seeds: tuple[int, ...],
    num_boost_round: int,
    calibration: str,
    commission_per_lot: float,
) -> tuple[FoldModel, Dataset]:
    train_idx = purge(ds, split.train, split.valid.start)
    valid_idx = purge(ds, split.valid, split.test.start)
    last_train_bar = int(ds.bar_index[train_idx[-1]])
    regime = RegimeModel.fit(bars.head(last_train_bar + 1), seeds=seeds)
    fold_ds = build_dataset(with_regime(base, regime.filtered_labels(bars)), setups)
    if not np.array_equal(fold_ds.bar_index, ds.bar_index):
        raise RuntimeError("regime warm-up changed the usable rows between folds")
    xt, yt = fold_ds.rows(train_idx)
    xv, yv = fold_ds.rows(valid_idx)
    signal = SignalModel.fit(
        xt,
        yt,
        xv,
        yv,
        SIGNAL_FEATURES,
        num_boost_round=num_boost_round,
        calibration=calibration,
        threshold=DEFAULT_THRESHOLD,
    )
    p_valid = signal.predict_proba(xv)
    com = commission_r(fold_ds, valid_idx, commission_per_lot)
    gate = fit_ev_gate(
        p_valid,
        fold_ds.r_multiple[valid_idx],
        fold_ds.reward_r[valid_idx],
        fold_ds.cost_r[valid_idx] + com,
        yv,
        float(yt.mean()),
        commission_r=com,
        commission_per_lot=commission_per_lot,
    )
    signal.info["ev_gate"] = gate.to_dict()
    signal.info["base_rate"] = round(float(yt.mean()), 4)
    x_test, _ = fold_ds.rows(split.test)
    return FoldModel(regime, signal, signal.predict_proba(x_test), gate, train_idx), fold_ds


def _seed_dataset(bars: pl.DataFrame, base: pl.DataFrame, setups: EngineSetups) -> Dataset:
    # the usable rows do not depend on the HMM's parameters, only on the inputs' warm-up
    return build_dataset(with_regime(base, np.where(_regime_ready(bars), 0, -1).astype(np.int8)), setups)


def train_models(
    bars: pl.DataFrame,
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    *,
    n_folds: int = 4,
    test_size: int = 300,
    valid_size: int = 300,
    gap: int = DEFAULT_GAP,
    hmm_seeds: tuple[int, ...] = DEFAULT_SEEDS,
    fold_hmm_seeds: tuple[int, ...] | None = (42, 59),
    num_boost_round: int = NUM_BOOST_ROUND,
    calibration: str = "platt",
    activate: bool = True,
    force: bool = False,
    margin: float = 0.01,
    min_auc: float | None = None,
    progress: ProgressFn | None = None,
    registry: ModelRegistry | None = None,
    triggered_by: str = "cli",
    params: Any = None,
    commission_per_lot: float | None = None,
) -> TrainReport:
    """Walk-forward train both models on `bars`, store the last fold's pair as a new registry version.

    Sizes are in setup rows. `fold_hmm_seeds` is used for the earlier folds (speed); the final fold
    uses all `hmm_seeds`. With `activate`, the new version goes live only if it shows an edge out of
    sample (see the module doc) — or `force` is set — and the registry validation passes (loads,
    predicts, AUC not worse than the active's by `margin` on the last test block, >= `min_auc` if
    given); otherwise it is kept with status "rejected" and the reason.
    """
    from trading.parameters import StrategyParams

    started = time.perf_counter()
    report = progress or _noop
    registry = registry or ModelRegistry(models_dir)
    params = params or StrategyParams()
    if commission_per_lot is None:
        commission_per_lot = float(getattr(params, "ml_commission_per_lot", 0.0))
    report("setups", 0.0)
    setups = engine_setups(bars, params)
    report("features", 3.0)
    base = base_feature_frame(bars)
    seed_ds = _seed_dataset(bars, base, setups)
    splits = plan_splits(len(seed_ds), n_folds, test_size, valid_size, gap)
    report("features", 5.0)

    folds: list[FoldResult] = []
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ("p", "y", "side", "base", "by_side", "take", "r")}
    last: FoldModel | None = None
    last_ds: Dataset | None = None
    for split in splits:
        final = split.fold == len(splits) - 1
        seeds = hmm_seeds if final or fold_hmm_seeds is None else fold_hmm_seeds
        report(f"fold {split.fold + 1}/{len(splits)}", 5.0 + 85.0 * split.fold / len(splits))
        fm, fold_ds = _fit_fold(
            bars, base, setups, seed_ds, split, seeds, num_boost_round, calibration, commission_per_lot
        )
        test = np.arange(split.test.start, split.test.stop)
        rates = BaselineRates.learn(fold_ds.y[fm.train_idx], fold_ds.side[fm.train_idx])
        y_test, side_test = fold_ds.y[test], fold_ds.side[test]
        m, b = score_with_baselines(fm.p_test, y_test, side_test, rates)
        take = gate_takes(fm.gate, fm.p_test, fold_ds, test, commission_per_lot)
        r_net = fold_ds.r_multiple[test] - commission_r(fold_ds, test, commission_per_lot)
        folds.append(
            FoldResult(
                split.fold,
                len(fm.train_idx),
                len(test),
                time_str(fold_ds.times[split.test.start]),
                time_str(fold_ds.times[split.test.stop - 1]),
                fm.signal.booster.num_boosted_rounds(),
                m,
                b,
                trading_figures(take, r_net, y_test),
                fm.gate.to_dict(),
            )
        )
        for key, value in (
            ("p", fm.p_test),
            ("y", y_test),
            ("side", side_test),
            ("base", rates.base_rate(len(test))),
            ("by_side", rates.by_side(side_test)),
            ("take", take),
            ("r", r_net),
        ):
            pooled[key].append(value)
        last, last_ds = fm, fold_ds
    assert last is not None and last_ds is not None
    report("scoring", 90.0)

    cat = {k: np.concatenate(v) for k, v in pooled.items()}
    overall = rounded(M.score(cat["p"], cat["y"]))
    baselines = {
        "base_rate": rounded(M.score(cat["base"], cat["y"])),
        "side_rate": rounded(M.score(cat["by_side"], cat["y"])),
    }
    beats, stat_text = baseline_verdict(overall, baselines)
    trading = trading_figures(cat["take"], cat["r"], cat["y"])
    edge = edge_verdict(beats, stat_text, trading, folds_beaten(folds), len(folds))
    final_split = splits[-1]
    final_rates = BaselineRates.learn(last_ds.y[last.train_idx], last_ds.side[last.train_idx])
    labels = last.regime.filtered_labels(bars)
    signal_block = {
        **{k: overall[k] for k in METRIC_KEYS},
        "ece": overall["ece"],
        "n": overall["n"],
        "base_win_rate": round(float(cat["y"].mean()), 4),
        "folds": [asdict(f) for f in folds],
        "fold_mean": fold_mean([f.metrics for f in folds]),
        "fold_mean_baselines": {name: fold_mean([f.baselines[name] for f in folds]) for name in baselines},
        "baselines": baselines,
        "beats_baselines": beats,
        "trading": trading,
        "verdict": edge["verdict"],
        "edge_checks": edge["checks"],
        "ev_gate": last.gate.to_dict(),
        "calibration": last.signal.calibration.method,
        "ece_valid_raw": round(last.signal.info["ece_valid_raw"], 4),
        "ece_valid_calibrated": round(last.signal.info["ece_valid_calibrated"], 4),
        "holdout": folds[-1].metrics,
        "importance": last.signal.importance(8),
    }
    regime_block = {
        **last.regime.summary(),
        "state_shares": state_shares(labels),
        "latest": last.regime.latest(bars).name,
    }
    elig = setups.eligible
    data_block = {
        "bars": bars.height,
        "setups": setups.frame.height,
        "eligible_setups": int(elig.sum()),
        "rows": len(last_ds),
        "from": str(bars["time"][0]),
        "to": str(bars["time"][-1]),
        "train_from": time_str(last_ds.times[0]),
        "train_to": time_str(last_ds.times[final_split.valid.stop - 1]),
        "holdout_from": folds[-1].test_from,
        "holdout_to": folds[-1].test_to,
        "hash": data_fingerprint(bars),
        "gap": gap,
        "label": LABEL_DEFINITION,
        "time_limit_bars": setups.horizon,
        "commission_per_lot": commission_per_lot,
    }
    warnings = [] if edge["demonstrated"] else [edge["verdict"]]

    report("saving", 95.0)
    version = registry.save(
        last.regime,
        last.signal,
        {
            "metrics": {k: overall[k] for k in (*METRIC_KEYS, "ece", "n")},
            "holdout_metrics": folds[-1].metrics,
            "baselines": baselines,
            "baseline_rates": asdict(final_rates),
            "regime": regime_block,
            "data": data_block,
            "label": {
                "definition": LABEL_DEFINITION,
                "time_limit_bars": setups.horizon,
                "kind": "triple_barrier",
            },
            "edge": edge,
            "trading": trading,
            "ev_gate": last.gate.to_dict(),
            "triggered_by": triggered_by,
        },
    )
    activated, reason = False, "not activated (--no-activate)"
    if activate and not (edge["demonstrated"] or force):
        reason = f"no demonstrated edge: {FORCE_HINT}"
        registry.reject(version, reason)
    elif activate:
        window_start = last_ds.times[final_split.test.start]
        check = registry.validate(
            version, recent_window_sample(bars, base, setups, window_start), margin, min_auc
        )
        if check.ok:
            registry.activate(version, by=triggered_by)
            forced = "" if edge["demonstrated"] else "forced by --activate without a demonstrated edge; "
            activated, reason = True, forced + check.reason
        else:
            registry.reject(version, check.reason)
            reason = f"kept as rejected: {check.reason}"
    report("done", 100.0)
    return TrainReport(
        version,
        activated,
        reason,
        clean_json(regime_block),
        clean_json(signal_block),
        data_block,
        round(time.perf_counter() - started, 2),
        warnings,
        clean_json(edge),
    )


def plan_splits(n: int, n_folds: int, test_size: int, valid_size: int, gap: int) -> list[Split]:
    """The requested walk-forward folds, or, for a short history, blocks shrunk to fit (>= 40 rows each)."""
    try:
        return walk_forward_splits(
            n, n_folds, test_size, valid_size, gap, min_train=2 * max(test_size, valid_size)
        )
    except ValueError:
        size = (n - 2 * gap) // (n_folds + 3)
        if size < 40:
            raise ValueError(
                f"{n} usable setups are too few to train {n_folds} walk-forward folds (need about "
                f"{(n_folds + 3) * 40 + 2 * gap}; a setup passing the bar gates comes every ~5 bars)"
            ) from None
        return walk_forward_splits(n, n_folds, size, size, gap, min_train=2 * size)


def _regime_ready(bars: pl.DataFrame) -> np.ndarray:
    from models.regime import regime_inputs

    return ~np.asarray(
        regime_inputs(bars).select(pl.any_horizontal(pl.all().is_null())).to_series(), dtype=bool
    )
