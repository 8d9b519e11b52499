"""Soak benchmark: the whole bot (App: engine, journal, notifier, paper broker) over a replay of the
real M15 bars, driven bar by bar as fast as it runs; is memory flat after the warm-up?

Reports RSS after the warm-up and at the end, the RSS slope per 1,000 bars after the warm-up (least
squares over the samples), and tracemalloc's top growers between the two points.
`python bench/soak.py [--json] [--bars 1500] [--warmup 400] [--runs-per-bar 4] [--no-tracemalloc] [--no-reports]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "xauusd_m15.parquet"
# gates that keep a bare SMC-only replay from trading at all (as tests/test_crash_recovery.py)
OPEN_GATES = "h1_bias,hours_9_21,confirmation,pullback,session,spread_limit,market_quality"


def rss_mb() -> float:
    """Resident set size now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def slope_per_1000(xs: list[int], ys: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0] * 1000)


async def soak(args: argparse.Namespace, workdir: Path) -> dict:
    from bot.app import App
    from bot.config import load_settings
    from trading.broker.paper import PaperBroker

    settings = load_settings(
        None,
        database_path=workdir / "soak.db",
        models_dir=Path(args.models_dir or workdir / "models"),
        paper_feed="replay",
        paper_replay_file=args.data,
        paper_replay_speed=1.0,
        disabled_gates=OPEN_GATES.split(","),
        cooldown_seconds=0,
        auto_retrain=False,
        market_update_minutes=30 if args.reports else 0,
        hourly_analysis=args.reports,
        daily_summary=args.reports,
        paper_commission_per_lot=3.5,
        analysis_history_bars=args.history,
    )
    app = App(settings, console_input=False)
    await app.start()
    assert app.scheduler is not None  # start() built it
    app.scheduler.pause()  # the bench drives the trading job itself, bar by bar
    for task in app._tasks:  # the paper market's own tick task: the bench releases the ticks
        if task.get_name() == "paper-market":
            task.cancel()
    feed, broker, job = app.feed, app.broker, app.trading_job
    if not isinstance(broker, PaperBroker):
        raise SystemExit(f"the soak drives the paper broker, got {type(broker).__name__}")
    feed.speed = 0.0  # no wall clock: ticks come out only when the bench releases them
    chunk = max(1, feed.ticks_per_bar // args.runs_per_bar)
    samples: list[tuple[int, float]] = []
    warm_rss = warm_snapshot = None
    started = time.perf_counter()
    bars = 0
    try:
        while bars < args.bars and not feed.finished:
            for _ in range(args.runs_per_bar):
                feed.advance(chunk)
                while feed._delivered < feed._released:  # hand the released ticks to the broker's SL/TP check
                    tick = await feed.next_tick()
                    if tick is None:
                        break
                    broker.set_tick(tick)
                await job.run()
            await asyncio.sleep(0)  # let the notifier and the journal tasks run
            bars += 1
            if bars == args.warmup:
                gc.collect()
                if args.tracemalloc:  # first: the snapshot's own memory is then in both RSS readings
                    warm_snapshot = tracemalloc.take_snapshot()
                warm_rss = rss_mb()
            if bars % args.sample_every == 0:
                gc.collect()
                samples.append((bars, rss_mb()))
        gc.collect()
        end_rss = rss_mb()
        end_snapshot = tracemalloc.take_snapshot() if args.tracemalloc else None
        seconds = time.perf_counter() - started
        decisions = len(await app.journal.decisions())
        trades = len(await app.journal.trades())
    finally:
        await app.shutdown("soak finished")
    after = [(b, r) for b, r in samples if b >= args.warmup]
    growers = []
    traced_growth = None
    if warm_snapshot is not None and end_snapshot is not None:
        keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = end_snapshot.filter_traces(keep).compare_to(warm_snapshot.filter_traces(keep), "lineno")
        traced_growth = round(sum(d.size_diff for d in diff) / 2**20, 3)
        for d in diff[: args.top]:
            frame = d.traceback[0]
            growers.append(
                {
                    "where": f"{_short(frame.filename)}:{frame.lineno}",
                    "kb": round(d.size_diff / 1024, 1),
                    "blocks": d.count_diff,
                }
            )
    return {
        "bench": "soak",
        "bars": bars,
        "warmup_bars": args.warmup,
        "runs_per_bar": args.runs_per_bar,
        "reports": args.reports,
        "seconds": round(seconds, 1),
        "bars_per_second": round(bars / seconds, 1),
        "decisions": decisions,
        "trades": trades,
        "rss_warm_mb": round(warm_rss or 0.0, 1),
        "rss_end_mb": round(end_rss, 1),
        "rss_growth_pct": round((end_rss / warm_rss - 1) * 100, 2) if warm_rss else None,
        "rss_slope_mb_per_1000_bars": round(slope_per_1000([b for b, _ in after], [r for _, r in after]), 2),
        "tracemalloc": args.tracemalloc,
        "traced_growth_mb": traced_growth,
        "top_growers": growers,
        "rss_samples": [[b, round(r, 1)] for b, r in samples],
    }


def _short(path: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--bars", type=int, default=1500, help="bars to replay after the analysis history")
    parser.add_argument("--warmup", type=int, default=400, help="bars before the reference point")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--runs-per-bar", type=int, default=4, help="trading-job runs (ticks) per bar")
    parser.add_argument("--models-dir", default=None, help="trained models (default: none, SMC-only)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--history", type=int, default=300, help="ANALYSIS_HISTORY_BARS of the bot")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    parser.add_argument(
        "--no-reports",
        dest="reports",
        action="store_false",
        help="without the market update, hourly analysis and daily summary (with its chart)",
    )
    args = parser.parse_args()
    if args.warmup >= args.bars:
        parser.error("--warmup must be below --bars")
    if args.tracemalloc:
        tracemalloc.start(1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):  # the console transport prints every notification
        result = asyncio.run(soak(args, Path(tmp)))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
