"""Benchmark of the whole backtest pipeline (analysis, engine, paper broker) in bars per second.

Prints one JSON line with --json: the shared real file (when present, SMC-only and, with
--models-dir, with models) and synthetic files of growing size to show the time grows linearly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.backtest import run_backtest
from trading.bars import load_bars
from trading.synthetic import generate_bars
from trading.timezones import ServerClock

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "xauusd_m15.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sizes", default="10000,100000", help="synthetic bar counts (e.g. 10000,100000,1000000)")
    ap.add_argument("--models-dir", help="also run with the active models of this registry")
    args = ap.parse_args()
    run_backtest(generate_bars(1000, seed=3))  # warm-up: numba compilation
    out: dict[str, object] = {"bench": "backtest"}
    if DATA.exists():
        bars = load_bars(DATA, ServerClock.parse("NY+7"))
        r = run_backtest(bars)
        out["real_bars"] = r.bars
        out["real_seconds"] = round(r.seconds, 2)
        out["real_bars_per_second"] = round(r.bars / r.seconds, 1)
        out["real_trades"] = len(r.trades)
        if args.models_dir:
            from models.live import SlotRegime, SlotSignal
            from models.registry import ModelRegistry, ModelSlot

            slot = ModelSlot(ModelRegistry(Path(args.models_dir)).load_active())
            r = run_backtest(bars, regime=SlotRegime(slot), signal=SlotSignal(slot))
            out["models_bars_per_second"] = round(r.bars / r.seconds, 1)
    scale = []
    for n in (int(x) for x in args.sizes.split(",") if x):
        t0 = time.perf_counter()
        bars = generate_bars(n, seed=5)
        gen = time.perf_counter() - t0
        r = run_backtest(bars)
        scale.append({"bars": n, "generate_s": round(gen, 2), "seconds": round(r.seconds, 2),
                      "bars_per_second": round(r.bars / r.seconds, 1), "trades": len(r.trades)})
    out["synthetic"] = scale
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
