"""Benchmark of `main.py optimize`: trials per minute on the 12,000-bar file with 3 folds.

Prepares the windows once (models trained per window unless --smc-only), then runs the same
seeded study at each worker count in a throw-away SQLite file and reports trials per minute
(min and median over --repeat runs), and whether every worker count drew the same trials.
Prints one JSON line with --json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from research import optimize as opt
from trading.backtest import BacktestConfig
from trading.bars import load_bars
from trading.timezones import ServerClock

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xauusd_m15.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--trials", type=int, default=8, help="trials per run (default 8)")
    ap.add_argument("--workers", default="1,2", help="worker counts to measure (default 1,2)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count (default 1)")
    ap.add_argument(
        "--smc-only", action="store_true", help="no models (skips the training in the preparation)"
    )
    args = ap.parse_args()
    bars = load_bars(args.data, ServerClock.parse("NY+7"))
    plan = opt.plan_optimization(bars.height, folds=3)
    t0 = time.perf_counter()
    data = opt.prepare(bars, plan, BacktestConfig(), use_models=not args.smc_only)
    out: dict[str, object] = {
        "bench": "optimize",
        "bars": bars.height,
        "folds": plan.folds,
        "bars_per_trial": plan.folds * plan.test_bars,
        "models": not args.smc_only,
        "prepare_seconds": round(time.perf_counter() - t0, 1),
        "trials": args.trials,
        "batch": args.batch,
    }
    runs, draws = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",") if w):
            rates = []
            for k in range(args.repeat):
                ex = opt.LocalExecutor(data, workers)
                try:
                    if workers > 1:  # start the pool's processes outside the timing
                        ex.map([opt.default_values(data.space)] * workers)
                    study = opt.open_study(
                        f"w{workers}-{k}", Path(tmp) / f"w{workers}-{k}.db", 42, {"bench": 1}
                    )
                    t1 = time.perf_counter()
                    opt.run_trials(study, ex, data.space, args.trials, args.batch)
                    rates.append(args.trials / (time.perf_counter() - t1) * 60)
                finally:
                    ex.close()
                draws[workers] = [(r.values, r.objective) for r in opt.trial_records(study)]
            runs[str(workers)] = {
                "trials_per_minute_min": round(min(rates), 2),
                "trials_per_minute_median": round(statistics.median(rates), 2),
            }
    out["workers"] = runs
    out["same_trials_at_every_worker_count"] = (
        len({json.dumps(d, sort_keys=True) for d in draws.values()}) == 1
    )
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
