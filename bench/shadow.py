"""Benchmark: the live step and bar with 0 and with 3 shadow challengers, on a replay of the shared bars.

The live engine (SMC-only analyzer, as without a trained model) runs through `MarketLoop`; after each
live step and bar the challengers run as the bot's trading job runs them (`trading.shadow_replay`).
Runs: no challenger; three parameter sets that all read live's analysis of the bar (shared); two
of those and one with the H1-bias gate on, which reads live's analysis with the bar's H1 bias added
(`trading.shadow.H1Bias`, as the bot's challengers do). Records are written to a temporary folder with
their real fsyncs; every tick live's paper account takes reaches the challengers' accounts too. Prints JSON: p50/p99 in ms of the live step, the live bar, the
challengers' work after each, and the whole 1-second job (live + challengers).

`python bench/shadow.py [--bars 1500] [--warmup 500] [--ticks-per-bar 15]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.shadow_fixtures import spec  # noqa: E402
from trading.analyzer import MarketAnalyzer  # noqa: E402
from trading.bars import load_bars  # noqa: E402
from trading.engine import TradingEngine  # noqa: E402
from trading.shadow import BarMemo, H1Bias, ShadowBook  # noqa: E402
from trading.shadow_replay import ReplayTimes, replay_with_shadow  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xauusd_m15.parquet"


def pct(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(values) * 1000
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
    }


def summary(times: ReplayTimes) -> dict[str, object]:
    step_job = [a + b for a, b in zip(times.live_step, times.shadow_step, strict=False)]
    bar_job = [a + b for a, b in zip(times.live_bar, times.shadow_bar, strict=False)]
    return {
        "live_step": pct(times.live_step),
        "live_bar": pct(times.live_bar),
        "challengers_after_step": pct(times.shadow_step),
        "challengers_after_bar": pct(times.shadow_bar),
        "job_step_total": pct(step_job),
        "job_bar_total": pct(bar_job),
    }


async def run(
    bars, challengers: int, warmup: int, ticks_per_bar: int, history: int, own_analysis: bool = True
) -> dict[str, object]:
    memo = BarMemo(MarketAnalyzer(history=history))
    h1 = H1Bias(history)
    with_h1 = h1.over(memo, True)
    holder: dict[str, TradingEngine] = {}
    with tempfile.TemporaryDirectory() as folder:

        def build(engine, clock):
            holder["engine"] = engine
            return ShadowBook(Path(folder), lambda s: with_h1 if s.params_name == "h1" else memo, clock)

        async def add(book: ShadowBook) -> None:
            engine = holder["engine"]
            third: tuple[str, dict[str, object]] = (
                ("h1", {"disabled_gates": engine.params.disabled_gates - {"h1_bias"}})
                if own_analysis
                else ("picky", {"min_setup_confidence": 0.6})
            )
            sets: list[tuple[str, dict[str, object]]] = [
                ("slow", {"cooldown_seconds": 1800}),
                ("tight", {"max_loss_frac": 0.4}),
                third,
            ]
            for n, (name, values) in enumerate(sets[:challengers], start=1):
                await book.add(spec(n, "live", engine, name, **values))

        result = await replay_with_shadow(
            bars, memo, build, warmup=warmup, ticks_per_bar=ticks_per_bar, history=history, before_start=add
        )
        out = summary(result.times)
        out["challengers"] = challengers
        out["one_with_the_h1_bias"] = own_analysis and challengers >= 3
        out["analyses"] = {"live_and_shared": memo.computed, "h1_bias_series": h1.computed}
        out["trades"] = {
            "live": len(result.live_trades),
            **{r.spec.label: len(r.recorder.closed) for r in result.book.runners.values()},
        }
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--bars", type=int, default=1500, help="last N bars of the shared file (warm-up included)"
    )
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--ticks-per-bar", type=int, default=15)
    ap.add_argument("--history", type=int, default=1500, help="bars the analyzer reads (the bot's default)")
    args = ap.parse_args()
    bars = load_bars(DATA).tail(args.bars)
    report = {
        "bars": args.bars - args.warmup,
        "ticks_per_bar": args.ticks_per_bar,
        "runs": [
            asyncio.run(run(bars, n, args.warmup, args.ticks_per_bar, args.history, own))
            for n, own in ((0, False), (3, False), (3, True))
        ],
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
