"""Speed of the synthetic generator and the session clock. `--json` prints one JSON line."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.sessions import market_open_mask, market_status, session_at
from trading.synthetic import generate_bars


def _best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _per_call_us(fn, instants: list[datetime]) -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for t in instants:
            fn(t)
        runs.append((time.perf_counter() - t0) / len(instants) * 1e6)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--bars", type=int, default=1_000_000)
    args = parser.parse_args()

    generate_bars(100)  # warm caches
    gen_s = _best_of(lambda: generate_bars(args.bars), 3)
    gen_100k_s = _best_of(lambda: generate_bars(100_000), 3)
    frame = generate_bars(args.bars)
    mask_ms = _best_of(lambda: market_open_mask(frame["time"]), 3) * 1e3
    base = datetime(2026, 3, 2, tzinfo=UTC)
    instants = [base + timedelta(minutes=15 * i) for i in range(20_000)]
    result = {
        "bars": args.bars,
        "generate_s": round(gen_s, 3),
        "generate_100k_ms": round(gen_100k_s * 1e3, 1),
        "bars_per_s": round(args.bars / gen_s),
        "market_open_mask_ms": round(mask_ms, 1),
        "session_at_us": round(_per_call_us(session_at, instants), 2),
        "market_status_us": round(_per_call_us(market_status, instants), 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
