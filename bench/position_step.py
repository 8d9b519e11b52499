"""Benchmark: the engine's per-second position step and its bar (entry) step, in milliseconds.

Wall-clock percentiles on a shared machine include the time other processes held the CPU;
`position_step_cpu` (thread CPU time) is the step's own work.
The real bars are walked by the market loop (60 generated ticks a bar, every tick stepped) with the
SMC-only strategy; every `engine.on_tick()` that runs with an open position is timed, as are the
engine's own phases: `exits` (the position step without broker I/O) and `fetch` (the paper broker's
reads), and `entry` (gates, sizing, order) and `analysis` of the bar step.
`python bench/position_step.py [--json] [--bars N]`   (issue 15's aim: position step p99 <= 1 ms)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trading.analyzer import AnalysisFrame, PrecomputedAnalyzer  # noqa: E402
from trading.bars import load_bars  # noqa: E402
from trading.broker.feeds import ReplayFeed  # noqa: E402
from trading.broker.paper import PaperBroker  # noqa: E402
from trading.engine import TradingEngine  # noqa: E402
from trading.parameters import StrategyParams  # noqa: E402
from trading.records import MemoryRecorder  # noqa: E402
from trading.simulation import MarketLoop, SimClock  # noqa: E402
from trading.timing import PhaseTimer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xauusd_m15.parquet"


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"n": 0}
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 4),
        "p99_ms": round(float(np.percentile(arr, 99)), 4),
        "max_ms": round(float(arr.max()), 3),
    }


async def run(bars_n: int) -> dict[str, object]:
    bars = load_bars(DATA).head(bars_n)
    params = StrategyParams()
    frame = AnalysisFrame.build(bars, None, None, with_h1_bias=params.gate_enabled("h1_bias"))
    warmup = 200
    feed = ReplayFeed(bars, speed=0, ticks_per_bar=60, history=warmup)
    broker = PaperBroker(feed=feed, balance=5_000.0)
    await broker.connect()
    clock = SimClock(bars["time"][warmup])
    engine = TradingEngine(
        broker,
        PrecomputedAnalyzer(frame),
        params=params,
        recorder=MemoryRecorder(keep_decisions=False),
        clock=clock,
        full_decisions=False,
    )
    engine.timer = PhaseTimer(window=10_000_000)  # keep every sample for the percentiles
    await engine.start()
    steps: list[float] = []
    cpu: list[float] = []
    inner = engine.on_tick

    async def timed_tick() -> None:
        busy = bool(engine.positions)
        t0, c0 = time.perf_counter(), time.thread_time()
        await inner()
        if busy:
            steps.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)

    engine.on_tick = timed_tick  # type: ignore[method-assign]
    loop = MarketLoop(feed, broker, engine, clock, lambda b: bars.slice(b, 1), skip_idle=True)
    started = time.perf_counter()
    await loop.run()
    seconds = time.perf_counter() - started
    samples = {name: list(values) for name, values in engine.timer._samples.items()}
    return {
        "bench": "position_step",
        "bars": bars.height - warmup,
        "ticks": loop.ticks,
        "seconds": round(seconds, 2),
        "position_step": pct(
            steps
        ),  # the whole on_tick with a position open, the paper broker's reads included
        # the same in this thread's CPU time: without the time other processes of a shared machine took
        "position_step_cpu": pct(cpu),
        "exits_phase": pct(samples.get("exits", [])),  # the position step without broker I/O
        "fetch_phase": pct(samples.get("fetch", [])),
        "entry_phase": pct(samples.get("entry", [])),
        "analysis_phase": pct(samples.get("analysis", [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bars", type=int, default=3_000)
    args = parser.parse_args()
    out = asyncio.run(run(args.bars))
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
