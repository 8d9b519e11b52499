"""Benchmark of the per-bar analysis: features + SMC + signal + session on the latest 200 bars.

Prints one JSON line with --json. Uses ../shared/data/xauusd_m15.parquet when present (the real
bars), else synthetic bars; the 1,000,000-bar scale run always uses the synthetic generator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading import features, smc
from trading.bars import load_bars
from trading.sessions import session_at
from trading.timezones import ServerClock

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xauusd_m15.parquet"


def latest_analysis(window) -> object:
    f = features.compute_features(window)
    a = smc.analyze(window)
    setup = smc.signal(a)
    session = session_at(window["time"][-1])
    return f, setup, session


def timed(fn, reps: int) -> np.ndarray:
    out = np.empty(reps)
    for i in range(reps):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument(
        "--scale-bars", type=int, default=1_000_000, help="synthetic bars for the scale run (0 = skip)"
    )
    args = ap.parse_args()

    if DATA.exists():
        bars = load_bars(DATA, ServerClock.parse("NY+7"))
        source = "xauusd_m15.parquet"
    else:
        from trading.synthetic import generate_bars

        bars = generate_bars(12_000, seed=7)
        source = "synthetic"
    window = bars.tail(200)
    for _ in range(20):  # warm-up: numba compilation, polars caches
        latest_analysis(window)
    feat = timed(lambda: features.compute_features(window), args.reps)
    smc_ms = timed(lambda: smc.signal(smc.analyze(window)), args.reps)
    # a rolling window over the last 300 bars, as the live loop sees new bars arrive
    starts = np.arange(len(bars) - 200 - args.reps, len(bars) - 200)
    total = np.empty(args.reps)
    for i, s in enumerate(starts):
        w = bars.slice(int(s), 200)
        t0 = time.perf_counter()
        latest_analysis(w)
        total[i] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    features.compute_features(bars)
    smc.analyze(bars)
    full_ms = (time.perf_counter() - t0) * 1000
    n_features = len(features.FEATURE_COLUMNS)

    result = {
        "bench": "analysis",
        "source": source,
        "bars": 200,
        "features": n_features,
        "features_ms_p50": round(float(np.percentile(feat, 50)), 3),
        "smc_ms_p50": round(float(np.percentile(smc_ms, 50)), 3),
        "analysis_ms_p50": round(float(np.percentile(total, 50)), 3),
        "analysis_ms_p99": round(float(np.percentile(total, 99)), 3),
        "full_frame_bars": len(bars),
        "full_frame_ms": round(full_ms, 1),
    }
    if args.scale_bars:
        import resource

        from trading.synthetic import generate_bars

        t0 = time.perf_counter()
        big = generate_bars(args.scale_bars, seed=11)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        features.compute_features(big)
        smc.analyze(big)
        result["scale_bars"] = args.scale_bars
        result["scale_generate_s"] = round(gen_s, 2)
        result["scale_features_smc_s"] = round(time.perf_counter() - t0, 2)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
