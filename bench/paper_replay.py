"""Benchmark: the paper broker over the real XAUUSD M15 bars, tick by tick and bar by bar.

Opens a position with SL/TP every 20 bars, so stops are checked all the way through.
`python bench/paper_replay.py [--json] [--bars N] [--ticks-per-bar K]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trading.bars import load_bars  # noqa: E402
from trading.broker.feeds import ReplayFeed  # noqa: E402
from trading.broker.paper import PaperBroker  # noqa: E402
from trading.domain import Side  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xauusd_m15.parquet"


async def by_ticks(bars, ticks_per_bar: int) -> dict:
    feed = ReplayFeed(bars, speed=0, ticks_per_bar=ticks_per_bar)
    broker = PaperBroker(feed=feed, balance=100_000.0)
    await broker.connect()
    started = time.perf_counter()
    ticks = 0
    while (tick := await feed.next_tick()) is not None:
        broker.set_tick(tick)
        ticks += 1
        if ticks % (20 * ticks_per_bar) == 1:
            side = Side.BUY if (ticks // (20 * ticks_per_bar)) % 2 == 0 else Side.SELL
            price = tick.price_to_open(side)
            await broker.open_market(side, 0.01, price - side.sign * 5.0, price + side.sign * 10.0)
    seconds = time.perf_counter() - started
    return {
        "ticks": ticks,
        "tick_seconds": round(seconds, 3),
        "ticks_per_second": round(ticks / seconds),
        "tick_deals": len(broker.to_state()["deals"]),
    }


async def by_bars(bars) -> dict:
    broker = PaperBroker(balance=100_000.0)
    await broker.connect()
    started = time.perf_counter()
    for i, row in enumerate(bars.iter_rows(named=True)):
        await broker.update_bar(row)
        if i % 20 == 0:
            side = Side.BUY if (i // 20) % 2 == 0 else Side.SELL
            price = (await broker.tick()).price_to_open(side)
            await broker.open_market(side, 0.01, price - side.sign * 5.0, price + side.sign * 10.0)
    seconds = time.perf_counter() - started
    return {
        "bar_seconds": round(seconds, 3),
        "bars_per_second": round(bars.height / seconds),
        "bar_deals": len(broker.to_state()["deals"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bars", type=int, default=12_000)
    parser.add_argument("--ticks-per-bar", type=int, default=12)
    args = parser.parse_args()
    bars = load_bars(DATA).head(args.bars)
    result = {"bench": "paper_replay", "bars": bars.height, "ticks_per_bar": args.ticks_per_bar}
    result |= asyncio.run(by_ticks(bars, args.ticks_per_bar))
    result |= asyncio.run(by_bars(bars))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
