"""Benchmark of trading.smc: analyze + signal on the latest 200 bars, the real 12,000-bar file, 1M bars.

    python bench/smc.py [--json] [--reps 300] [--million-bars 1000000]

Prints one JSON line with --json (timings in ms, p50/p99 over `reps` repetitions after a warm-up).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trading import smc  # noqa: E402
from trading.bars import BAR_SCHEMA, load_bars  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xauusd_m15.parquet"


def timings(fn, reps: int) -> tuple[float, float]:
    fn()
    samples = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - start
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def random_walk_bars(n: int, seed: int = 7) -> pl.DataFrame:
    """A plain gold-like random walk (0.01 tick) in BAR_SCHEMA, for the scale run only."""
    rng = np.random.default_rng(seed)
    close = np.round(2000.0 + np.cumsum(rng.normal(0.0, 2.5, n)), 2)
    close = np.maximum(close, 100.0)
    open_ = np.empty(n)
    open_[0] = close[0]
    open_[1:] = close[:-1]
    wick = np.abs(rng.normal(0.0, 1.5, (2, n)))
    high = np.round(np.maximum(open_, close) + wick[0], 2)
    low = np.round(np.minimum(open_, close) - wick[1], 2)
    start = int(datetime(2000, 1, 3, tzinfo=UTC).timestamp() * 1_000_000)
    return pl.DataFrame(
        {
            "time": pl.Series(start + np.arange(n, dtype=np.int64) * 900_000_000).cast(BAR_SCHEMA["time"]),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "tick_volume": np.full(n, 100, np.int64),
            "spread": np.full(n, 20, np.int32),
            "real_volume": np.zeros(n, np.int64),
        },
        schema=BAR_SCHEMA,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--million-bars", type=int, default=1_000_000)
    args = parser.parse_args()

    bars = load_bars(DATA) if DATA.exists() else random_walk_bars(12_000)
    latest = bars.tail(200)
    analysis = smc.analyze(latest)
    analyze_p50, analyze_p99 = timings(lambda: smc.analyze(latest), args.reps)
    signal_p50, _ = timings(lambda: smc.signal(analysis), args.reps)
    both_p50, both_p99 = timings(lambda: smc.signal(smc.analyze(latest), latest), args.reps)
    full_p50, _ = timings(lambda: smc.signal(smc.analyze(bars)), 30)

    big = random_walk_bars(args.million_bars)
    start = time.perf_counter()
    big_analysis = smc.analyze(big)
    smc.signal(big_analysis)
    big_ms = (time.perf_counter() - start) * 1e3
    result = {
        "bars": latest.height,
        "smc_ms_p50": round(analyze_p50, 4),
        "smc_ms_p99": round(analyze_p99, 4),
        "signal_ms_p50": round(signal_p50, 4),
        "smc_signal_ms_p50": round(both_p50, 4),
        "smc_signal_ms_p99": round(both_p99, 4),
        "full_frame_bars": bars.height,
        "full_frame_ms": round(full_p50, 3),
        "million_bars": big.height,
        "million_ms": round(big_ms, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "setup_now": None if (setup := smc.signal(analysis)) is None else setup.reason,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
