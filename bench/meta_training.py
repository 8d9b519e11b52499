"""Benchmark of the meta-model's label building and training on 141,000 M15 bars (synthetic).

Measures, on `trading.synthetic.generate_bars(141_000)` (about five years of M15 bars):
- `setups_s`: the engine's setups and their bar-gate verdicts (`models.setups.find_setups`),
- `barrier_s`: the triple-barrier labels of every setup (`models.labels.triple_barrier`, numba),
- `features_s`: the stationary bar features and the setup dataset,
- `train_s`: one whole `train_models` run (setups, features, 4 walk-forward folds with an HMM and a
  booster each, the EV-gate fit, registry write), once: it takes minutes.
Label timings are repeated (`--reps`, min and median); numba caches are warmed first.
Run: python bench/meta_training.py [--json] [--bars N] [--reps N] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.dataset import base_feature_frame, build_dataset, with_regime
from models.setups import EngineSetups, find_setups, label_setups, time_limit_bars
from models.training import train_models
from trading.parameters import StrategyParams
from trading.synthetic import generate_bars

T = TypeVar("T")


def _timed(fn: Callable[[], T], reps: int) -> tuple[float, float, T]:
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return min(runs), statistics.median(runs), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--bars", type=int, default=141_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-train", action="store_true", help="label timings only")
    args = parser.parse_args()
    bars = generate_bars(args.bars, seed=11)
    params = StrategyParams()
    horizon = time_limit_bars(params)
    small = bars.head(2000)  # warm numba (SMC, indicators, barrier) so the figures are the work itself
    label_setups(small, find_setups(small, params), horizon)

    s_min, s_med, setups = _timed(lambda: find_setups(bars, params), args.reps)
    b_min, b_med, outcome = _timed(lambda: label_setups(bars, setups, horizon), args.reps)
    ready = np.zeros(bars.height, dtype=np.int8)

    def features():
        return build_dataset(
            with_regime(base_feature_frame(bars), ready), EngineSetups(setups, outcome, horizon)
        )

    f_min, f_med, ds = _timed(features, args.reps)
    out: dict[str, object] = {
        "bars": bars.height,
        "setups": setups.height,
        "eligible_setups": int(setups["eligible"].sum()),
        "labelled_rows": len(ds),
        "win_rate": round(float(ds.y.mean()), 4),
        "setups_s_min": round(s_min, 3),
        "setups_s_median": round(s_med, 3),
        "barrier_s_min": round(b_min, 4),
        "barrier_s_median": round(b_med, 4),
        "features_s_min": round(f_min, 3),
        "features_s_median": round(f_med, 3),
        "label_building_s_min": round(s_min + b_min, 3),
        "reps": args.reps,
        "note": "shared 2-core machine; numbers are noisy",
    }
    if not args.no_train:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = train_models(bars, Path(tmp), activate=False)
            out["train_s"] = round(time.perf_counter() - t0, 1)
        out["train_auc"] = report.signal["auc"]
        out["train_base_rate_auc"] = report.signal["baselines"]["base_rate"]["auc"]
        out["train_verdict"] = report.edge["verdict"]
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:<26} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
