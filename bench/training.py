"""Benchmark of model training and live prediction on the real 12,000 M15 bars.

Measures: the whole `train_models` run (engine setups and their triple-barrier labels, features,
4 walk-forward folds with an HMM and a booster each, the EV-gate fit, registry write), the
single-row signal prediction of a setup (`predict_row`, in-place predict on a preallocated float32
row) and the latest-bar regime reading on a 200-bar window. The 141,000-bar figures are in
bench/meta_training.py.
Target: training well under a minute on 2 cores. Prints one JSON line with --json.
Run: python bench/training.py [--json] [--reps N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.dataset import feature_frame
from models.registry import ModelRegistry
from models.training import bundle_dataset, train_models
from trading.bars import load_bars

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xauusd_m15.parquet"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--reps", type=int, default=2000, help="single-row predictions to time")
    args = parser.parse_args()
    if not DATA.exists():
        print(json.dumps({"skipped": f"no data at {DATA}"}))
        return 0
    bars = load_bars(DATA)
    with tempfile.TemporaryDirectory() as tmp:
        # warm the numba caches so the figure is the training itself
        feature_frame(bars.head(300), _tiny_regime(bars))
        t0 = time.perf_counter()
        report = train_models(bars, Path(tmp), activate=False)
        train_s = time.perf_counter() - t0
        if report.version is None:
            raise SystemExit("training stored no model version")
        bundle = ModelRegistry(tmp).load(report.version)

    row = bundle_dataset(bundle, bars.tail(1500)).x[-1]
    bundle.signal.predict_row(row)
    lat = np.empty(args.reps)
    for i in range(args.reps):
        t = time.perf_counter_ns()
        bundle.signal.predict_row(row)
        lat[i] = (time.perf_counter_ns() - t) / 1000
    window = bars.tail(200)
    reg = np.empty(200)
    for i in range(200):
        t = time.perf_counter_ns()
        bundle.regime.latest(window)
        reg[i] = (time.perf_counter_ns() - t) / 1000

    out = {
        "bars": bars.height,
        "train_seconds": round(train_s, 2),
        "predict_row_us_p50": round(float(np.percentile(lat, 50)), 1),
        "predict_row_us_p99": round(float(np.percentile(lat, 99)), 1),
        "regime_latest_200_bars_us_p50": round(float(np.percentile(reg, 50)), 1),
        "auc": report.signal["auc"],
        "log_loss": report.signal["log_loss"],
        "baseline_log_loss_base_rate": report.signal["baselines"]["base_rate"]["log_loss"],
        "base_win_rate": report.signal["base_win_rate"],
        "ece": report.signal["ece"],
        "beats_baselines": report.signal["beats_baselines"],
        "edge_demonstrated": report.edge["demonstrated"],
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:<34} {v}")
    return 0


def _tiny_regime(bars):
    from models.regime import RegimeModel

    return RegimeModel.fit(bars.head(400), seeds=(42,), n_iter=5)


if __name__ == "__main__":
    sys.exit(main())
