"""Chart drawing speed: a 200-bar candlestick chart with every overlay, and a 500-point equity chart.

Target (issue 7): the 200-bar chart with overlays in under 300 ms. Synthetic, seeded data; no files needed.
Run: python bench/bench_charts.py [--json] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from charts.candles import ChartPosition, candlestick_chart
from charts.equity import equity_chart

TARGET_MS = 300.0


def synthetic_bars(n: int = 200, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 2650 + np.cumsum(rng.normal(0, 2.0, n))
    open_ = np.concatenate(([close[0]], close[:-1])) + rng.normal(0, 0.3, n)
    high = np.maximum(open_, close) + rng.exponential(1.2, n)
    low = np.minimum(open_, close) - rng.exponential(1.2, n)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    return pl.DataFrame(
        {
            "time": [start + timedelta(minutes=15 * i) for i in range(n)],
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
        },
        schema_overrides={"time": pl.Datetime("us", "UTC")},
    )


def synthetic_smc(bars: pl.DataFrame, seed: int = 7) -> pl.DataFrame:
    """FVGs and swings by their textbook rules; order blocks and BOS/CHoCH sprinkled at random."""
    hi, lo, c = pl.col("high"), pl.col("low"), pl.col("close")
    fvg = pl.when(hi.shift(2) < lo).then(1).when(lo.shift(2) > hi).then(-1).otherwise(0)
    smc = bars.select(
        fvg=fvg,
        fvg_top=pl.when(fvg == 1).then(lo).when(fvg == -1).then(lo.shift(2)),
        fvg_bottom=pl.when(fvg == 1).then(hi.shift(2)).when(fvg == -1).then(hi),
        swing_high=(hi.shift(5) == hi.rolling_max(11)).cast(pl.Int8),
        swing_low=-(lo.shift(5) == lo.rolling_min(11)).cast(pl.Int8),
        swing_high_level=pl.when(hi.shift(5) == hi.rolling_max(11)).then(hi.shift(5)),
        swing_low_level=pl.when(lo.shift(5) == lo.rolling_min(11)).then(lo.shift(5)),
        close=c,
    )
    n = bars.height
    rng = np.random.default_rng(seed)
    marks = {name: np.zeros(n) for name in ("bos", "choch", "ob")}
    for name, count in (("bos", 8), ("choch", 3), ("ob", 6)):
        marks[name][rng.choice(n - 10, count, replace=False)] = rng.choice([-1, 1], count)
    close = smc["close"].to_numpy()
    return smc.drop("close").with_columns(
        bos=pl.Series(marks["bos"]),
        choch=pl.Series(marks["choch"]),
        ob=pl.Series(marks["ob"]),
        ob_top=pl.Series(np.where(marks["ob"] != 0, close + 1.5, np.nan)),
        ob_bottom=pl.Series(np.where(marks["ob"] != 0, close - 1.5, np.nan)),
    )


def time_ms(fn: Callable[[], bytes], runs: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) per run; CPU time is the figure to trust on a busy shared machine."""
    fn()  # warm-up: font cache, first-use imports
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    bars = synthetic_bars()
    smc = synthetic_smc(bars)
    last = float(bars["close"][-1])
    positions = [
        ChartPosition("BUY", last - 2, last - 8, last + 12, "BUY 0.01 #1001"),
        ChartPosition("SELL", last + 3, last + 9, last - 9, "SELL 0.02 #1002"),
    ]
    regimes = pl.Series(np.repeat([0, 1, 2, 1], 50))
    candle, candle_cpu = time_ms(
        lambda: candlestick_chart(bars, smc, positions, regimes, "XAUUSD M15"), args.runs
    )

    n = 500
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=6 * i) for i in range(n)]
    equity = 10_000 + np.cumsum(np.random.default_rng(1).normal(2, 30, n))
    eq, _ = time_ms(lambda: equity_chart(times, equity, np.round(equity, -2), "Equity"), args.runs)

    result = {
        "bench": "charts",
        "runs": args.runs,
        "candles_200_overlays_ms_median": round(statistics.median(candle), 1),
        "candles_200_overlays_ms_max": round(max(candle), 1),
        "candles_200_overlays_cpu_ms_median": round(statistics.median(candle_cpu), 1),
        "equity_500_ms_median": round(statistics.median(eq), 1),
        "png_bytes": len(candlestick_chart(bars, smc, positions, regimes, "XAUUSD M15")),
        "target_ms": TARGET_MS,
        "ok": statistics.median(candle) < TARGET_MS,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:34s} {value}")


if __name__ == "__main__":
    main()
