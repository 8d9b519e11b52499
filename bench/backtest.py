"""Benchmark of the whole backtest pipeline (analysis, market loop, engine, paper broker) in bars per second.

Prints one JSON line with --json: the shared real file with the generated path (4 and 60 ticks a bar)
and with M1 detail (M1 bars built from the 60-tick path: 4 ticks a minute, 60 a bar, through the
M1 detail code), SMC-only and with models (the active pair of --models-dir, or a pair trained on the
file into a temporary registry first: the "full pipeline"); then synthetic files of growing size with
the 60-tick path, SMC-only (it trades the most) with the loss limits off (SCALE_CONFIG), with the
process's peak RSS after each, to show time linear in bars and what memory grows with (the input
frame and the results; the loop's own state does not).
Then real ticks (`RealTicks`, what `--ticks` runs): the first --tick-bars bars of the real file walked at
--tick-rate ticks a second (the generated path, 900 × rate ticks a bar) and fed as the broker's ticks,
SMC-only: ticks_per_second counts the ticks of the bars walked (not the warm-up's) over the run's seconds.
Issue 21's targets: >= 5,000 bars/s generated, >= 2,000 bars/s with M1 detail, 141,000 bars < 60 s;
issue 21's: >= 500,000 ticks/s with real ticks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.backtest import BacktestConfig, run_backtest
from trading.bars import load_bars
from trading.intrabar import GeneratedPath, M1Detail, RealTicks, walk_all
from trading.risk.modes import RiskLimits
from trading.synthetic import generate_bars
from trading.timezones import ServerClock

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xauusd_m15.parquet"


def m1_from_generated(bars: pl.DataFrame) -> pl.DataFrame:
    """M1 bars whose M15 aggregate is each bar: the 60-tick generated path, 4 ticks a minute."""
    times, bid, _ask = walk_all(GeneratedPath(bars, 60), bars.height)
    ticks = pl.DataFrame({"ms": times, "bid": bid}).with_columns(
        (pl.col("ms") // 60_000 * 60_000).alias("minute")
    )
    m1 = ticks.group_by("minute", maintain_order=True).agg(
        open=pl.col("bid").first(),
        high=pl.col("bid").max(),
        low=pl.col("bid").min(),
        close=pl.col("bid").last(),
    )
    spread = bars.select(pl.col("spread").repeat_by(15).explode())["spread"]
    return m1.with_columns(
        pl.col("minute")
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
        .dt.cast_time_unit("us")
        .alias("time"),
        pl.lit(4, pl.Int64).alias("tick_volume"),
        spread.alias("spread"),
        pl.lit(0, pl.Int64).alias("real_volume"),
    ).select("time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume")


def ticks_from_generated(bars: pl.DataFrame, per_second: int) -> pl.DataFrame:
    """A ticks file (time_msc in UTC ms, bid, ask) walked through each bar at `per_second` ticks a second."""
    times, bid, ask = walk_all(GeneratedPath(bars, 900 * per_second), bars.height)
    return pl.DataFrame({"time_msc": times, "bid": bid, "ask": ask})


def ticks_run(bars: pl.DataFrame, per_second: int) -> dict[str, object]:
    ticks = ticks_from_generated(bars, per_second)
    r, cpu = timed(bars, BacktestConfig(), path=lambda f: RealTicks(f, ticks))
    return {
        **figures(r, cpu),
        "tick_rate_per_second": per_second,
        "file_ticks": ticks.height,
        # the ticks of the bars walked: the warm-up bars' ticks are in the file but never replayed
        "ticks_walked": r.ticks + r.ticks_skipped,
        "ticks_per_second": round((r.ticks + r.ticks_skipped) / r.seconds),
    }


# the synthetic runs trade all along: with the default limits a random market hits the total-loss stop
# early and the rest of a long file is decided without a position (fast, and proving nothing)
SCALE_CONFIG = BacktestConfig(
    ticks_per_bar=60, balance=1_000_000.0, limits=RiskLimits(daily_loss_pct=50.0, total_loss_pct=100.0)
)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(*args: Any, **kwargs: Any) -> tuple[Any, float]:
    """`run_backtest` and the process CPU seconds it took: on a shared 2-core machine the wall seconds
    (the targets' figure) move with the other load, the CPU seconds much less."""
    t0 = time.process_time()
    r = run_backtest(*args, **kwargs)
    return r, time.process_time() - t0


def figures(r: Any, cpu: float) -> dict[str, object]:
    return {
        "bars": r.bars,
        "seconds": round(r.seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "bars_per_cpu_second": round(r.bars / cpu, 1) if cpu > 0 else None,
        "bars_per_second": round(r.bars / r.seconds, 1),
        "trades": len(r.trades),
        "ticks": r.ticks,
        "net_profit": r.metrics()["net_profit"],
    }


def models_runs(bars: pl.DataFrame, m1: pl.DataFrame, models_dir: str | None) -> dict[str, object]:
    from models.live import SlotRegime, SlotSignal
    from models.registry import ModelRegistry, ModelSlot
    from models.training import train_models

    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        out: dict[str, object] = {}
        if models_dir is None:
            t0 = time.perf_counter()
            train_models(bars, Path(tmp), force=True)
            out["models_trained_s"] = round(time.perf_counter() - t0, 1)
        slot = ModelSlot(ModelRegistry(Path(models_dir or tmp)).load_active())
        out["real_models_generated_60"] = figures(
            *timed(bars, BacktestConfig(ticks_per_bar=60), regime=SlotRegime(slot), signal=SlotSignal(slot))
        )
        out["real_models_m1_detail"] = figures(
            *timed(
                bars,
                BacktestConfig(),
                regime=SlotRegime(slot),
                signal=SlotSignal(slot),
                path=lambda f: M1Detail(f, m1),
            )
        )
        return out


def targets(out: dict[str, Any]) -> dict[str, Any]:
    """Issue 21's speed targets against the figures measured (None: not measured in this run). The
    models runs also give the trades they took: a model whose gate lets nothing through is fast because
    it trades nothing, so read its rate beside its trades."""

    def rate(key: str) -> float | None:
        return out[key]["bars_per_second"] if key in out else None

    big = [r for r in out.get("synthetic_generated_60", []) if r["bars"] >= 140_000]
    checks = {
        "smc_generated_60_bars_per_second": (rate("real_generated_60"), 5_000),
        "models_generated_60_bars_per_second": (rate("real_models_generated_60"), 5_000),
        "models_m1_detail_bars_per_second": (rate("real_models_m1_detail"), 2_000),
        "smc_m1_detail_bars_per_second": (rate("real_m1_detail"), 2_000),
    }
    result: dict[str, Any] = {
        name: {"value": v, "target": t, "met": None if v is None else v >= t}
        for name, (v, t) in checks.items()
    }
    tick_rate = out["real_ticks"]["ticks_per_second"] if "real_ticks" in out else None
    result["real_ticks_ticks_per_second"] = {
        "value": tick_rate,
        "target": 500_000,
        "met": None if tick_rate is None else tick_rate >= 500_000,
    }
    seconds = big[0]["seconds"] if big else None
    result["bars_141k_seconds"] = {
        "value": seconds,
        "target": 60,
        "met": None if seconds is None else seconds < 60,
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sizes", default="2000,8000", help="synthetic bar counts (e.g. 10000,141000)")
    ap.add_argument(
        "--real-bars", type=int, default=0, help="only the first N bars of the real file (0 = all)"
    )
    ap.add_argument("--models-dir", help="the models' registry (default: train a pair on the file first)")
    ap.add_argument("--no-models", action="store_true", help="SMC-only runs only")
    ap.add_argument(
        "--tick-bars", type=int, default=1500, help="bars of the real file for the ticks run (0: none)"
    )
    ap.add_argument("--tick-rate", type=int, default=5, help="ticks a second in the ticks run")
    args = ap.parse_args()
    warmup = BacktestConfig().warmup_bars
    if 0 < args.tick_bars <= warmup:
        ap.error(f"--tick-bars must be over the backtest's {warmup} warm-up bars (or 0: no ticks run)")
    load_start = round(os.getloadavg()[0], 2)  # > 1 on 2 cores: the wall seconds include others' load
    run_backtest(generate_bars(600, seed=3))  # warm-up: numba compilation
    out: dict[str, object] = {"bench": "backtest"}
    if DATA.exists():
        bars = load_bars(DATA, ServerClock.parse("NY+7"))
        if args.real_bars:
            bars = bars.head(args.real_bars)
        out["real_generated_4"] = figures(*timed(bars, BacktestConfig(ticks_per_bar=4)))
        out["real_generated_60"] = figures(*timed(bars, BacktestConfig(ticks_per_bar=60)))
        m1 = m1_from_generated(bars)
        out["real_m1_detail"] = figures(*timed(bars, BacktestConfig(), path=lambda f: M1Detail(f, m1)))
        if args.tick_bars:
            out["real_ticks"] = ticks_run(bars.head(args.tick_bars), args.tick_rate)
        if not args.no_models:
            out.update(models_runs(bars, m1, args.models_dir))
    scale = []
    for n in (int(x) for x in args.sizes.split(",") if x and int(x) > 0):
        t0 = time.perf_counter()
        bars = generate_bars(n, seed=5)
        gen = time.perf_counter() - t0
        r, cpu = timed(bars, SCALE_CONFIG)
        scale.append(
            {
                **figures(r, cpu),
                "trades_per_1000_bars": round(len(r.trades) / r.bars * 1000, 1),
                "generate_s": round(gen, 2),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    out["synthetic_generated_60"] = scale
    out["targets"] = targets(out)
    out["load_average_1m"] = {"start": load_start, "end": round(os.getloadavg()[0], 2)}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
