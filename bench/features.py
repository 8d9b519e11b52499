"""Feature speed: p50/p99 of compute_features on the latest 200 bars, the full real frame, and optionally
1,000,000 generated bars (--big). `--json` prints one JSON line."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.bars import BAR_SCHEMA, load_bars
from trading.features import FEATURE_COLUMNS, compute_features

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xauusd_m15.parquet"


def _times_ms(frame: pl.DataFrame, reps: int) -> np.ndarray:
    compute_features(frame)  # warm-up (numba cache load)
    out = np.empty(reps)
    for i in range(reps):
        t = time.perf_counter()
        compute_features(frame)
        out[i] = time.perf_counter() - t
    return out * 1e3


def _random_walk_bars(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    close = 2000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0015, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 5e-4, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 5e-4, n)))
    start_us = 946_857_600_000_000  # 2000-01-03 00:00 UTC
    time_us = pl.Series(start_us + np.arange(n, dtype=np.int64) * 900_000_000)
    return pl.DataFrame(
        {
            "time": time_us.cast(pl.Datetime("us", "UTC")),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "tick_volume": rng.integers(1, 5000, n),
            "spread": rng.integers(5, 60, n).astype(np.int32),
            "real_volume": np.zeros(n, dtype=np.int64),
        },
        schema=BAR_SCHEMA,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--big", action="store_true", help="also run 1,000,000 generated bars")
    args = parser.parse_args()

    bars = load_bars(DATA) if DATA.exists() else _random_walk_bars(12_000)
    small = _times_ms(bars.tail(200), args.reps)
    full = _times_ms(bars, max(20, args.reps // 10))
    result: dict[str, object] = {
        "bars": 200,
        "features": len(FEATURE_COLUMNS),
        "features_ms_p50": round(float(np.percentile(small, 50)), 4),
        "features_ms_p99": round(float(np.percentile(small, 99)), 4),
        "full_frame_bars": bars.height,
        "full_frame_ms_p50": round(float(np.percentile(full, 50)), 3),
    }
    if args.big:
        big = _random_walk_bars(1_000_000)
        t = time.perf_counter()
        compute_features(big)
        result["million_bars_ms"] = round((time.perf_counter() - t) * 1e3, 1)
        result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
