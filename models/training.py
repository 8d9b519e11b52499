"""Train and evaluate both models with honest walk-forward numbers; the `train` / `evaluate` commands.

Every fold refits the HMM and the booster on rows before its test block only (expanding window,
gaps of >= the label horizon, early stopping and calibration on a validation slice that precedes
the test block). The model of the last fold, whose test block ends at the newest bar, is the
candidate written to the registry; it goes live only if it is not worse than the active one on
that same out-of-sample block. Metrics are reported next to two naive baselines: always the
training majority, and "the next bar repeats this bar's direction".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
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
    LABEL_HORIZON,
    SIGNAL_FEATURES,
    Dataset,
    Split,
    base_feature_frame,
    build_dataset,
    walk_forward_splits,
    with_regime,
)
from models.regime import DEFAULT_SEEDS, RegimeModel, state_shares
from models.registry import ModelBundle, ModelRegistry, RegistryError
from models.signal import DEFAULT_THRESHOLD, NUM_BOOST_ROUND, SignalModel

ProgressFn = Callable[[str, float], None]
DEFAULT_MODELS_DIR = "data/models"
METRIC_KEYS = ("auc", "accuracy", "log_loss", "brier")


def _noop(stage: str, percent: float) -> None:
    return None


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class BaselineRates:
    """What the naive baselines learned from the training rows."""

    up_rate: float  # share of up bars: the majority baseline predicts it for every row
    up_after_up: float  # P(up | this bar closed up): the previous-bar-direction baseline
    up_after_down: float

    @classmethod
    def learn(cls, y: np.ndarray, prev_up: np.ndarray) -> BaselineRates:
        def rate(mask: np.ndarray) -> float:
            return float(y[mask].mean()) if mask.any() else float(y.mean())

        return cls(float(y.mean()), rate(prev_up == 1), rate(prev_up == 0))

    def majority(self, n: int) -> np.ndarray:
        return np.full(n, self.up_rate)

    def previous_bar(self, prev_up: np.ndarray) -> np.ndarray:
        return np.where(prev_up == 1, self.up_after_up, self.up_after_down)


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


def _score_with_baselines(p: np.ndarray, y: np.ndarray, prev_up: np.ndarray, rates: BaselineRates) -> tuple[
    dict[str, float], dict[str, dict[str, float]]
]:
    model = _rounded(M.score(p, y))
    base = {
        "majority": _rounded(M.score(rates.majority(len(y)), y)),
        "previous_bar": _rounded(M.score(rates.previous_bar(prev_up), y)),
    }
    return model, base


def _fold_mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return _rounded({k: float(np.nanmean([r[k] for r in rows])) for k in METRIC_KEYS})


def _verdict(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> tuple[bool, str]:
    """Does the model beat both baselines on AUC and log loss? Say it plainly either way."""
    best_auc = max((b["auc"] for b in baselines.values() if b["auc"] == b["auc"]), default=0.5)
    best_ll = min(b["log_loss"] for b in baselines.values())
    beats = model["auc"] > best_auc and model["log_loss"] < best_ll
    text = (
        f"model AUC {model['auc']:.4f} vs best baseline {best_auc:.4f}; "
        f"log loss {model['log_loss']:.4f} vs {best_ll:.4f}: "
        + ("beats the naive baselines" if beats else "does NOT beat the naive baselines (no demonstrated edge)")
    )
    return beats, text


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


def _fit_fold(
    bars: pl.DataFrame, base: pl.DataFrame, ds: Dataset, split: Any, seeds: tuple[int, ...],
    num_boost_round: int, calibration: str,
) -> tuple[FoldModel, Dataset]:
    last_train_bar = int(ds.bar_index[split.train.stop - 1])
    regime = RegimeModel.fit(bars.head(last_train_bar + 1), seeds=seeds)
    fold_ds = build_dataset(with_regime(base, regime.filtered_labels(bars)))
    if not np.array_equal(fold_ds.bar_index, ds.bar_index):
        raise RuntimeError("regime warm-up changed the usable rows between folds")
    xt, yt = fold_ds.rows(split.train)
    xv, yv = fold_ds.rows(split.valid)
    signal = SignalModel.fit(xt, yt, xv, yv, SIGNAL_FEATURES, num_boost_round=num_boost_round,
                             calibration=calibration, threshold=DEFAULT_THRESHOLD)
    x_test, _ = fold_ds.rows(split.test)
    return FoldModel(regime, signal, signal.predict_proba(x_test)), fold_ds


def train_models(
    bars: pl.DataFrame,
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    *,
    n_folds: int = 4,
    test_size: int = 1000,
    valid_size: int = 1000,
    gap: int = DEFAULT_GAP,
    hmm_seeds: tuple[int, ...] = DEFAULT_SEEDS,
    fold_hmm_seeds: tuple[int, ...] | None = (42, 59),
    num_boost_round: int = NUM_BOOST_ROUND,
    calibration: str = "platt",
    activate: bool = True,
    margin: float = 0.01,
    min_auc: float | None = None,
    progress: ProgressFn | None = None,
    registry: ModelRegistry | None = None,
    triggered_by: str = "cli",
) -> TrainReport:
    """Walk-forward train both models on `bars`, store the last fold's pair as a new registry version.

    `fold_hmm_seeds` is used for the earlier folds (speed); the final fold uses all `hmm_seeds`.
    With `activate`, the new version goes live if the registry validation passes (loads, predicts,
    AUC not worse than the active's by `margin` on the last test block, and >= `min_auc` if given);
    otherwise it is kept with status "rejected" and the reason.
    """
    started = time.perf_counter()
    report = progress or _noop
    registry = registry or ModelRegistry(models_dir)
    report("features", 0.0)
    base = base_feature_frame(bars)
    # the usable rows do not depend on the HMM's parameters, only on the inputs' warm-up
    seed_ds = build_dataset(with_regime(base, np.where(_regime_ready(bars), 0, -1).astype(np.int8)))
    splits = plan_splits(len(seed_ds), n_folds, test_size, valid_size, gap)
    report("features", 5.0)

    folds: list[FoldResult] = []
    pooled_p, pooled_y, pooled_prev, pooled_base_maj, pooled_base_prev = [], [], [], [], []
    last: FoldModel | None = None
    last_ds: Dataset | None = None
    for split in splits:
        final = split.fold == len(splits) - 1
        seeds = hmm_seeds if final or fold_hmm_seeds is None else fold_hmm_seeds
        report(f"fold {split.fold + 1}/{len(splits)}", 5.0 + 85.0 * split.fold / len(splits))
        fold_model, fold_ds = _fit_fold(bars, base, seed_ds, split, seeds, num_boost_round, calibration)
        yt = fold_ds.y[split.train.start : split.train.stop]
        rates = BaselineRates.learn(yt, fold_ds.prev_up[split.train.start : split.train.stop])
        y_test = fold_ds.y[split.test.start : split.test.stop]
        prev_test = fold_ds.prev_up[split.test.start : split.test.stop]
        m, b = _score_with_baselines(fold_model.p_test, y_test, prev_test, rates)
        folds.append(FoldResult(
            split.fold, len(split.train), len(split.test),
            _time_str(fold_ds.times[split.test.start]), _time_str(fold_ds.times[split.test.stop - 1]),
            fold_model.signal.booster.num_boosted_rounds(), m, b,
        ))
        pooled_p.append(fold_model.p_test)
        pooled_y.append(y_test)
        pooled_prev.append(prev_test)
        pooled_base_maj.append(rates.majority(len(y_test)))
        pooled_base_prev.append(rates.previous_bar(prev_test))
        last, last_ds = fold_model, fold_ds
    assert last is not None and last_ds is not None
    report("scoring", 90.0)

    p_all, y_all = np.concatenate(pooled_p), np.concatenate(pooled_y)
    overall = _rounded(M.score(p_all, y_all))
    baselines = {
        "majority": _rounded(M.score(np.concatenate(pooled_base_maj), y_all)),
        "previous_bar": _rounded(M.score(np.concatenate(pooled_base_prev), y_all)),
    }
    beats, verdict = _verdict(overall, baselines)
    final_split = splits[-1]
    final_rates = BaselineRates.learn(
        last_ds.y[final_split.train.start : final_split.train.stop],
        last_ds.prev_up[final_split.train.start : final_split.train.stop],
    )
    labels = last.regime.filtered_labels(bars)
    signal_block = {
        **{k: overall[k] for k in METRIC_KEYS},
        "ece": overall["ece"],
        "n": overall["n"],
        "folds": [asdict(f) for f in folds],
        "fold_mean": _fold_mean([f.metrics for f in folds]),
        "fold_mean_baselines": {name: _fold_mean([f.baselines[name] for f in folds]) for name in baselines},
        "baselines": baselines,
        "beats_baselines": beats,
        "verdict": verdict,
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
    data_block = {
        "bars": bars.height,
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
        "horizon": LABEL_HORIZON,
    }
    warnings = [] if beats else [verdict]

    report("saving", 95.0)
    version = registry.save(last.regime, last.signal, {
        "metrics": {k: overall[k] for k in (*METRIC_KEYS, "ece", "n")},
        "holdout_metrics": folds[-1].metrics,
        "baselines": baselines,
        "baseline_rates": asdict(final_rates),
        "regime": regime_block,
        "data": data_block,
        "label": {"definition": LABEL_DEFINITION, "horizon": LABEL_HORIZON, "threshold": 0.0},
        "triggered_by": triggered_by,
    })
    activated, reason = False, "not activated (--no-activate)"
    if activate:
        window_start = last_ds.times[final_split.test.start]
        check = registry.validate(version, recent_window_sample(bars, base, window_start), margin, min_auc)
        if check.ok:
            registry.activate(version, by=triggered_by)
            activated, reason = True, check.reason
        else:
            registry.reject(version, check.reason)
            reason = f"kept as rejected: {check.reason}"
    report("done", 100.0)
    return TrainReport(version, activated, reason, _clean_json(regime_block), _clean_json(signal_block),
                       data_block, round(time.perf_counter() - started, 2), warnings)


def plan_splits(n: int, n_folds: int, test_size: int, valid_size: int, gap: int) -> list[Split]:
    """The requested walk-forward folds, or, for a short history, blocks shrunk to fit (>= 200 rows each)."""
    try:
        return walk_forward_splits(n, n_folds, test_size, valid_size, gap, horizon=LABEL_HORIZON)
    except ValueError:
        size = (n - 2 * gap) // (n_folds + 3)
        if size < 200:
            raise ValueError(
                f"{n} usable rows are too few to train {n_folds} walk-forward folds (need about "
                f"{(n_folds + 3) * 200 + 2 * gap + 115} bars)"
            ) from None
        return walk_forward_splits(n, n_folds, size, size, gap, min_train=2 * size, horizon=LABEL_HORIZON)


def _regime_ready(bars: pl.DataFrame) -> np.ndarray:
    from models.regime import regime_inputs

    return ~np.asarray(regime_inputs(bars).select(pl.any_horizontal(pl.all().is_null())).to_series(), dtype=bool)


def bundle_dataset(bundle: ModelBundle, bars: pl.DataFrame, base: pl.DataFrame | None = None) -> Dataset:
    """The clean dataset as this bundle sees it (its own HMM's filtered regime labels)."""
    base = base_feature_frame(bars) if base is None else base
    return build_dataset(with_regime(base, bundle.regime.filtered_labels(bars)), features=bundle.signal.feature_names)


def recent_window_sample(
    bars: pl.DataFrame, base: pl.DataFrame, start: np.datetime64
) -> Callable[[ModelBundle], tuple[np.ndarray, np.ndarray]]:
    """For registry validation: the (x, y) rows from `start` on, built with each bundle's own regime."""

    def sample(bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray]:
        ds = bundle_dataset(bundle, bars, base)
        keep = ds.times >= start
        return ds.x[keep], ds.y[keep]

    return sample


# --------------------------------------------------------------------------- evaluation


def evaluate_models(
    bars: pl.DataFrame, models_dir: str | Path = DEFAULT_MODELS_DIR, registry: ModelRegistry | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Score the active (or a given) version on any bars; metrics plus baselines with its training rates."""
    registry = registry or ModelRegistry(models_dir)
    version = version or registry.active_version()
    if version is None:
        raise RegistryError(f"no active model in {registry.root}; run `train` first")
    bundle = registry.load(version)
    ds = bundle_dataset(bundle, bars)
    if len(ds) == 0:
        raise ValueError("no usable rows: the bars are too few for the features' warm-up (need ~115)")
    p = bundle.signal.predict_proba(ds.x)
    rates_d = bundle.metadata.get("baseline_rates")
    rates = BaselineRates(**rates_d) if rates_d else BaselineRates.learn(ds.y, ds.prev_up)
    model, base = _score_with_baselines(p, ds.y, ds.prev_up, rates)
    beats, verdict = _verdict(model, base)
    train_to = bundle.metadata.get("data", {}).get("train_to")
    overlap = 0
    if train_to:
        overlap = int((ds.times <= np.datetime64(train_to.rstrip("Z"))).sum())
    out = {
        **{k: model[k] for k in METRIC_KEYS},
        "ece": model["ece"],
        "n": model["n"],
        "version": version,
        "from": _time_str(ds.times[0]),
        "to": _time_str(ds.times[-1]),
        "baselines": base,
        "beats_baselines": beats,
        "verdict": verdict,
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
        console.print(f"[yellow]spread ASSUMED {spread} points on every bar (the file has no spread column)[/yellow]")
    return bars


def _console(args: argparse.Namespace) -> Any:
    from rich.console import Console

    # with --json - the report goes to stderr so stdout carries exactly one JSON object
    return Console(stderr=args.json == "-")


def _cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(args)
    bars = _load(args, console)
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("training", total=100)

        def progress(stage: str, percent: float) -> None:
            bar.update(task, description=stage, completed=percent)

        result = train_models(bars, args.models_dir, n_folds=args.folds, test_size=args.test_size,
                              valid_size=args.test_size,
                              activate=not args.no_activate, progress=progress)
    _print_train(console, result)
    payload = result.to_json_dict()
    _write_json(args.json, payload)
    return 0


def _print_train(console: Any, r: TrainReport) -> None:
    from rich import box
    from rich.table import Table

    s = r.signal
    # narrow headers and collapsed padding: the table fits an 80-column terminal or a pipe
    table = Table(title=f"walk-forward, {len(s['folds'])} folds (test blocks)", show_lines=False,
                  box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0))
    for col in ("fold", "test from", "test to", "rows", "trees", "AUC", "acc", "logloss", "Brier", "prev AUC"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in s["folds"]:
        m, b = f["metrics"], f["baselines"]["previous_bar"]
        table.add_row(str(f["fold"] + 1), _short(f["test_from"]), _short(f["test_to"]), str(f["test_rows"]), str(f["rounds"]),
                      _f(m["auc"]), _f(m["accuracy"]), _f(m["log_loss"]), _f(m["brier"]), _f(b["auc"]))
    console.print(table)
    console.print("  pooled test blocks:")
    for name, m in (("model", s), *s["baselines"].items()):
        console.print(f"  {name:<13} AUC {_f(m['auc'])}  acc {_f(m['accuracy'])}  "
                      f"log loss {_f(m['log_loss'])}  Brier {_f(m['brier'])}")
    fm, fb = s["fold_mean"], s["fold_mean_baselines"]
    console.print(f"  mean of folds: AUC {_f(fm['auc'])} (majority {_f(fb['majority']['auc'])}, previous bar "
                  f"{_f(fb['previous_bar']['auc'])}),")
    console.print(f"                 log loss {_f(fm['log_loss'])} (majority "
                  f"{_f(fb['majority']['log_loss'])}, previous bar {_f(fb['previous_bar']['log_loss'])})")
    console.print(f"  calibration {s['calibration']}: ECE {_f(s['ece'])} on the test blocks "
                  f"(validation slice raw {_f(s['ece_valid_raw'])} -> {_f(s['ece_valid_calibrated'])})")
    console.print(f"  {s['verdict']}")
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r.regime["state_shares"].items())
    console.print(f"  regime: {shares}; latest bar {r.regime['latest']}")
    console.print(f"  version {r.version}: {'ACTIVE' if r.activated else 'not active'} ({r.activation_reason})")
    console.print(f"  {r.seconds:.1f} s")


def _short(iso: str) -> str:
    return iso[5:16].replace("T", " ")  # "2025-10-23T09:15Z" -> "10-23 09:15"


def _f(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    console = _console(args)
    result = evaluate_models(_load(args, console), args.models_dir)
    console.print(f"version {result['version']} on {result['n']} bars {result['from']} .. {result['to']}")
    for name, m in (("model", result), *result["baselines"].items()):
        console.print(f"  {name:<13} AUC {_f(m['auc'])}  acc {_f(m['accuracy'])}  "
                      f"log loss {_f(m['log_loss'])}  Brier {_f(m['brier'])}")
    console.print(f"  ECE {_f(result['ece'])}; {result['verdict']}")
    if result["rows_inside_training_range"]:
        console.print(f"  warning: {result['rows_inside_training_range']} rows lie inside the training range "
                      "(in-sample, optimistic)")
    _write_json(args.json, result)
    return 0


from models.train_cli import add_train_arguments  # noqa: E402,F401  (re-exported: the parser lives there)
