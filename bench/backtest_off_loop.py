"""Does `/backtest` keep the trading loop responsive? Event-loop lag while a BotBacktester runs.

A 10 ms asyncio ticker stands in for the trading loop; its lag (how late each wake-up is) is
measured idle and while `/backtest DAYS` replays the real bars in the backtester's worker thread.
Prints one JSON line with --json: lag p50/p99/max in ms, idle and busy, and the backtest's seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.backtests import BARS_PER_DAY, BotBacktester
from trading.backtest import BacktestConfig
from trading.bars import load_bars

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xauusd_m15.parquet"
TICK = 0.010


async def lags_while(stop: asyncio.Event) -> list[float]:
    out: list[float] = []
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(TICK)
        out.append((time.perf_counter() - t0 - TICK) * 1000)
    return out


def summary(lags: list[float]) -> dict[str, float]:
    a = np.asarray(lags)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
        "samples": int(a.size),
    }


async def main(days: int) -> dict[str, object]:
    bars = load_bars(DATA)
    tester = BotBacktester(lambda n: bars.tail(n), lambda: BacktestConfig())
    stop = asyncio.Event()
    idle_task = asyncio.create_task(lags_while(stop))
    await asyncio.sleep(2.0)
    stop.set()
    idle = await idle_task
    stop = asyncio.Event()
    busy_task = asyncio.create_task(lags_while(stop))
    t0 = time.perf_counter()
    report = await tester.run(days, lambda done, total: None)
    seconds = time.perf_counter() - t0
    stop.set()
    busy = await busy_task
    tester.close()
    return {
        "days": days,
        "bars": report.bars,
        "backtest_seconds": round(seconds, 2),
        "bars_per_second": round(report.bars / seconds, 1),
        "trades": report.metrics.get("trades"),
        "loop_lag_idle": summary(idle),
        "loop_lag_during_backtest": summary(busy),
        "expected_bars": days * BARS_PER_DAY,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args.days))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
