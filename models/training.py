"""Train and evaluate both models with honest walk-forward numbers; the `train` / `evaluate` commands.

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
than taking every setup (one-sided t > 1.645) and more than zero. Otherwise it is stored, not activated, unless `force` (`train --activate`) says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import textwrap
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
from models.ev import EVGate, fit_ev_gate
from models.regime import DEFAULT_SEEDS, RegimeModel, state_shares
from models.registry import (
    ModelBundle,
    ModelRegistry,
    RegistryError,
    load_version,
    resolve_version,
    stored_versions_text,
)
from models.setups import EngineSetups, engine_setups
from models.signal import DEFAULT_THRESHOLD, NUM_BOOST_ROUND, SignalModel
from trading.expected_value import CONTRACT_SIZE, expected_value_r

ProgressFn = Callable[[str, float], None]
DEFAULT_MODELS_DIR = "data/models"
METRIC_KEYS = ("auc", "accuracy", "log_loss", "brier")
MIN_GATED_TRADES = 20  # fewer out-of-sample trades through the gate prove nothing either way
EDGE_T = 1.645  # one-sided 5 %: the gate's picks must beat taking every setup by this many standard errors
FORCE_HINT = "stored, not activated; activate it anyway with `train --activate`"


def _noop(stage: str, percent: float) -> None:
    return None


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class BaselineRates:
    """What the naive baselines learned from the training rows."""

    win_rate: float  # base win rate of setups: the base-rate baseline predicts it for every row
    buy_win_rate: float  # per-side win rates: the side baseline
    sell_win_rate: float

    @classmethod
    def learn(cls, y: np.ndarray, side: np.ndarray) -> BaselineRates:
        def rate(mask: np.ndarray) -> float:
            return float(y[mask].mean()) if mask.any() else float(y.mean())

        return cls(float(y.mean()), rate(side > 0), rate(side < 0))

    def base_rate(self, n: int) -> np.ndarray:
        return np.full(n, self.win_rate)

    def by_side(self, side: np.ndarray) -> np.ndarray:
        return np.where(side > 0, self.buy_win_rate, self.sell_win_rate)


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train_rows: int
    test_rows: int
    test_from: str
    test_to: str
    rounds: int
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    trading: dict[str, Any]  # every setup vs the EV gate's picks on the test block
    ev_gate: dict[str, Any]


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
        return _clean_json(asdict(self))


def _clean_json(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rounded(d: dict[str, float], digits: int = 4) -> dict[str, float]:
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in d.items()}


def _score_with_baselines(
    p: np.ndarray, y: np.ndarray, side: np.ndarray, rates: BaselineRates
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    model = _rounded(M.score(p, y))
    base = {
        "base_rate": _rounded(M.score(rates.base_rate(len(y)), y)),
        "side_rate": _rounded(M.score(rates.by_side(side), y)),
    }
    return model, base


def _fold_mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return _rounded({k: float(np.nanmean([r[k] for r in rows])) for k in METRIC_KEYS})


def _verdict(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """Does the model beat every baseline on AUC and log loss? Say it plainly either way."""
    best_auc = max((b["auc"] for b in baselines.values() if b["auc"] == b["auc"]), default=0.5)
    best_ll = min(b["log_loss"] for b in baselines.values())
    auc = model["auc"] if model["auc"] == model["auc"] else 0.5
    beats = auc > best_auc and model["log_loss"] < best_ll
    text = (
        f"model AUC {auc:.4f} vs best baseline {best_auc:.4f}; "
        f"log loss {model['log_loss']:.4f} vs {best_ll:.4f}: "
        + ("beats the naive baselines" if beats else "does NOT beat the naive baselines")
    )
    return beats, text


def trading_figures(take: np.ndarray, r: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Every setup vs the gate's picks: count, win rate, mean and total realised R."""

    def block(mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        return {
            "n": n,
            "win_rate": float(y[mask].mean()) if n else None,
            "mean_r": float(r[mask].mean()) if n else None,
            "total_r": float(r[mask].sum()),
        }

    every = np.ones(len(r), dtype=bool)
    out = {"all_setups": _clean_json(_rounded(block(every))), "ev_gate": _clean_json(_rounded(block(take)))}
    n = int(take.sum())
    # Welch-style t of (gated mean - all mean), the gated sample's standard error dominating
    se = float(r[take].std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    out["t_vs_all"] = round((float(r[take].mean()) - float(r.mean())) / se, 3) if n > 1 and se > 0 else None
    return out


def folds_beaten(folds: list[FoldResult]) -> int:
    """Folds whose test block the model scored better than the base rate on both AUC and log loss."""
    return sum(
        1
        for f in folds
        if (
            f.metrics["auc"] == f.metrics["auc"]
            and f.metrics["auc"] > 0.5
            and f.metrics["log_loss"] < f.baselines["base_rate"]["log_loss"]
        )
    )


def edge_verdict(
    beats: bool,
    stat_text: str,
    trading: dict[str, Any],
    folds_won: int | None = None,
    n_folds: int | None = None,
) -> dict[str, Any]:
    """The activation rule: beat the baselines pooled *and* in most folds, and make the gate's picks pay,
    out of sample. (A pooled win carried by one or two folds is luck as often as skill.) Every check is
    named with its figures, and the verdict says which failed."""
    checks = [{"name": "baselines", "passed": beats, "detail": stat_text}]
    if folds_won is not None and n_folds:
        needed = n_folds // 2 + 1
        checks.append(
            {
                "name": "folds",
                "passed": folds_won >= needed,
                "detail": f"better than the base rate in {folds_won} of {n_folds} folds (needs {needed})",
            }
        )
    gated, every = trading["ev_gate"], trading["all_setups"]
    t = trading.get("t_vs_all")
    enough = gated["n"] >= MIN_GATED_TRADES
    checks.append(
        {
            "name": "gated trades",
            "passed": enough,
            "detail": f"{'' if enough else 'only '}{gated['n']} test setups passed the EV gate "
            f"(needs {MIN_GATED_TRADES})",
        }
    )
    if enough:
        positive = gated["mean_r"] is not None and gated["mean_r"] > 0
        checks.append(
            {
                "name": "gated trades pay",
                "passed": positive,
                "detail": f"EV-gated test trades make {gated['mean_r']:+.3f} R each (needs > 0)",
            }
        )
        checks.append(
            {
                "name": "better than all setups",
                "passed": t is not None and t > EDGE_T,
                "detail": f"{gated['mean_r']:+.3f} R vs all {every['n']} setups at {every['mean_r']:+.3f} R: "
                f"t {t if t is not None else 'n/a'} (needs > {EDGE_T})",
            }
        )
    demonstrated = all(c["passed"] for c in checks)
    failed = [c["detail"] for c in checks if not c["passed"]]
    if demonstrated:
        verdict = f"edge demonstrated out of sample (all {len(checks)} checks passed)"
    else:
        passed = [c["name"] for c in checks if c["passed"]]
        verdict = (
            "no demonstrated edge: failed: "
            + "; ".join(failed)
            + (f" (passed: {', '.join(passed)})" if passed else "")
        )
    pays = all(c["passed"] for c in checks if c["name"] not in ("baselines", "folds"))
    beats_all = all(c["passed"] for c in checks if c["name"] in ("baselines", "folds"))
    return {
        "demonstrated": demonstrated,
        "beats_baselines": beats_all,
        "gate_pays": pays,
        "folds_won": folds_won,
        "checks": checks,
        "verdict": verdict,
    }


def data_fingerprint(bars: pl.DataFrame) -> str:
    h = hashlib.sha256()
    for col in ("time", "open", "high", "low", "close"):
        h.update(bars[col].to_physical().to_numpy().tobytes())
    return h.hexdigest()[:16]


def _time_str(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="m")) + "Z"


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class FoldModel:
    regime: RegimeModel
    signal: SignalModel
    p_test: np.ndarray
    gate: EVGate
    train_idx: np.ndarray


def commission_r(ds: Dataset, rows: np.ndarray, commission_per_lot: float) -> np.ndarray:
    return 2.0 * commission_per_lot / CONTRACT_SIZE / ds.risk[rows]


def gate_takes(
    gate: EVGate, p: np.ndarray, ds: Dataset, rows: np.ndarray, commission_per_lot: float
) -> np.ndarray:
    """Which rows the ML gates let through: EV > 0 after costs, p >= the fitted floor and >= the base rate."""
    cost = ds.cost_r[rows] + commission_r(ds, rows, commission_per_lot)
    return (expected_value_r(p, ds.reward_r[rows], cost) > 0) & (p >= gate.min_prob) & (p >= gate.base_rate)


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
        m, b = _score_with_baselines(fm.p_test, y_test, side_test, rates)
        take = gate_takes(fm.gate, fm.p_test, fold_ds, test, commission_per_lot)
        r_net = fold_ds.r_multiple[test] - commission_r(fold_ds, test, commission_per_lot)
        folds.append(
            FoldResult(
                split.fold,
                len(fm.train_idx),
                len(test),
                _time_str(fold_ds.times[split.test.start]),
                _time_str(fold_ds.times[split.test.stop - 1]),
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
    overall = _rounded(M.score(cat["p"], cat["y"]))
    baselines = {
        "base_rate": _rounded(M.score(cat["base"], cat["y"])),
        "side_rate": _rounded(M.score(cat["by_side"], cat["y"])),
    }
    beats, stat_text = _verdict(overall, baselines)
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
        "fold_mean": _fold_mean([f.metrics for f in folds]),
        "fold_mean_baselines": {name: _fold_mean([f.baselines[name] for f in folds]) for name in baselines},
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
        "train_from": _time_str(last_ds.times[0]),
        "train_to": _time_str(last_ds.times[final_split.valid.stop - 1]),
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
        _clean_json(regime_block),
        _clean_json(signal_block),
        data_block,
        round(time.perf_counter() - started, 2),
        warnings,
        _clean_json(edge),
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


# --------------------------------------------------------------------------- evaluation


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
    model, base = _score_with_baselines(p, ds.y, ds.side, rates)
    beats, verdict = _verdict(model, base)
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
        "from": _time_str(ds.times[0]),
        "to": _time_str(ds.times[-1]),
        "baselines": base,
        "beats_baselines": beats,
        "trading": trading,
        "verdict": edge_verdict(beats, verdict, trading)["verdict"],
        "rows_inside_training_range": overlap,
    }
    return _clean_json(out)


# --------------------------------------------------------------------------- CLI


def _write_json(target: str | None, payload: dict[str, Any]) -> None:
    if target is None:
        return
    text = json.dumps(_clean_json(payload), allow_nan=False)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(target).write_text(text + "\n")


def _load(args: argparse.Namespace, console: Any = None) -> pl.DataFrame:
    from trading.bars import load_bars

    spread = getattr(args, "spread", None)
    bars = load_bars(args.data, server_tz=args.server_tz, spread=spread)
    if spread is not None and console is not None:
        console.print(
            f"[yellow]spread ASSUMED {spread} points on every bar (the file has no spread column)[/yellow]"
        )
    return bars


def _console(args: argparse.Namespace) -> Any:
    from rich.console import Console

    # with --json - the report goes to stderr so stdout carries exactly one JSON object
    return Console(stderr=args.json == "-")


def _cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(args)
    bars = _load(args, console)
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=100)

        def progress(stage: str, percent: float) -> None:
            bar.update(task, description=stage, completed=percent)

        result = train_models(
            bars,
            args.models_dir,
            n_folds=args.folds,
            test_size=args.test_size,
            valid_size=args.test_size,
            activate=not args.no_activate,
            force=args.activate,
            progress=progress,
            commission_per_lot=args.commission,
        )
    _print_train(console, result)
    payload = result.to_json_dict()
    _write_json(args.json, payload)
    return 0


def _print_train(console: Any, r: TrainReport) -> None:
    from rich import box
    from rich.table import Table

    s = r.signal
    # narrow headers and collapsed padding: the table fits an 80-column terminal or a pipe
    table = Table(
        title=f"walk-forward, {len(s['folds'])} folds (test blocks of setups)",
        show_lines=False,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0),
    )
    # per fold: AUC and the R per trade of the EV-gated setups against all setups (log losses pooled below)
    for col in ("fold", "from", "to", "setups", "AUC", "won", "EV n", "EV R", "all R"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in s["folds"]:
        m, t = f["metrics"], f["trading"]
        table.add_row(
            str(f["fold"] + 1),
            _short(f["test_from"]),
            _short(f["test_to"]),
            str(f["test_rows"]),
            _f(m["auc"]),
            _pct(t["all_setups"]["win_rate"]),
            str(t["ev_gate"]["n"]),
            _r(t["ev_gate"]["mean_r"]),
            _r(t["all_setups"]["mean_r"]),
        )
    console.print(table)
    console.print(f"  pooled test setups ({s['n']}, base win rate {_pct(s['base_win_rate'])}):")
    for name, m in (("model", s), *s["baselines"].items()):
        console.print(
            f"  {name:<10} AUC {_f(m['auc'])}  acc {_f(m['accuracy'])}  "
            f"log loss {_f(m['log_loss'])}  Brier {_f(m['brier'])}"
        )
    t = s["trading"]
    console.print(
        f"  EV gate on the test blocks: {t['ev_gate']['n']} of {t['all_setups']['n']} setups, "
        f"{_r(t['ev_gate']['mean_r'])} R each (every setup: {_r(t['all_setups']['mean_r'])} R)"
    )
    console.print(f"  EV gate of the stored model: {EVGate.from_dict(s['ev_gate']).describe()}")
    fm, fb = s["fold_mean"], s["fold_mean_baselines"]
    console.print(
        f"  mean of folds: AUC {_f(fm['auc'])} (base rate {_f(fb['base_rate']['auc'])}), "
        f"log loss {_f(fm['log_loss'])} (base rate {_f(fb['base_rate']['log_loss'])})"
    )
    console.print(
        f"  calibration {s['calibration']}: ECE {_f(s['ece'])} on the test blocks "
        f"(validation slice raw {_f(s['ece_valid_raw'])} -> {_f(s['ece_valid_calibrated'])})"
    )
    checks = s.get("edge_checks", [])
    console.print("  activation checks (out of sample):")
    for check in checks:  # every check, passed or failed, with its figures; wrapped between words, indented
        text = f"{'pass' if check['passed'] else 'FAIL'} {check['name']}: {check['detail']}"
        console.print(
            textwrap.fill(text, width=78, initial_indent="    ", subsequent_indent="         "),
            highlight=False,
        )
    failed = [c["name"] for c in checks if not c["passed"]]
    verdict = (
        f"no demonstrated edge (failed: {', '.join(failed)})"
        if failed
        else "edge demonstrated out of sample"
        if checks
        else s["verdict"]
    )
    console.print(
        textwrap.fill(f"verdict: {verdict}", width=78, initial_indent="  ", subsequent_indent="    "),
        highlight=False,
    )
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r.regime["state_shares"].items())
    console.print(f"  regime: {shares}; latest bar {r.regime['latest']}")
    console.print(
        f"  version {r.version}: {'ACTIVE' if r.activated else 'not active'} ({r.activation_reason})"
    )
    console.print(f"  {r.seconds:.1f} s")


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _r(v: Any) -> str:
    return "n/a" if v is None else f"{v:+.3f}"


def _short(iso: str) -> str:
    return iso[5:16].replace("T", " ")  # "2025-10-23T09:15Z" -> "10-23 09:15"


def _f(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    console = _console(args)
    version = getattr(args, "version", None)
    if version:  # a wrong version is refused before the bars are read
        version = resolve_version(ModelRegistry(args.models_dir), version)
    result = evaluate_models(_load(args, console), args.models_dir, version=version)
    console.print(
        f"version {result['version']} ({result['status'] or 'status unknown'}) on {result['n']} bars "
        f"{result['from']} .. {result['to']}"
    )
    for name, m in (("model", result), *result["baselines"].items()):
        console.print(
            f"  {name:<13} AUC {_f(m['auc'])}  acc {_f(m['accuracy'])}  "
            f"log loss {_f(m['log_loss'])}  Brier {_f(m['brier'])}"
        )
    t = result["trading"]
    console.print(
        f"  {result['n']} setups, base win rate {_pct(result['base_win_rate'])}; EV gate takes "
        f"{t['ev_gate']['n']} at {_r(t['ev_gate']['mean_r'])} R each (every setup "
        f"{_r(t['all_setups']['mean_r'])} R)"
    )
    console.print(f"  ECE {_f(result['ece'])}; {result['verdict']}")
    if result["rows_inside_training_range"]:
        console.print(
            f"  warning: {result['rows_inside_training_range']} rows lie inside the training range "
            "(in-sample, optimistic)"
        )
    _write_json(args.json, result)
    return 0
