"""Which intrabar path is least wrong: each mode against a 1-second synthetic tick truth.

`trading.intrabar.synthetic_truth` makes a random-walk market at 1-second ticks and aggregates it to M1
and M15 as a broker would; each path built from the M15 (or M1) bars is then scored on bracket orders
(long entry at each bar's open, stop and target at 1/4, 1/2 and 1 mean bar range, 4 bars to hit):
the share of brackets whose outcome matches the truth's, and the mean error of the hit time.
Then the SMC-only backtest (balance $50,000, so no loss limit interferes) on the same market walked three
ways: the generated 60-tick path from the M15 bars, M1 detail, and the 1-second truth itself as real ticks:
trades, net, profit factor on each, and how many trades differ from the M1-detail run and from the truth
(entries only one run took, shared entries closed for another reason, and the mean |profit difference|
of the shared ones). `--no-backtest` skips that part.
`python bench/intrabar.py [--json] [--bars N] [--seeds 1,2,3] [--no-backtest]`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.backtest import BacktestConfig, run_backtest
from trading.intrabar import GeneratedPath, M1Detail, RealTicks, TickPath, score_paths, synthetic_truth


def compare_trades(a: list, b: list) -> dict:
    """Run `a` against run `b`: entries only one of them took (by open time and side), entries both took that
    closed for another reason, and the mean |profit difference| of the entries both took."""
    mine = {(t.open_time, t.side): t for t in a}
    theirs = {(t.open_time, t.side): t for t in b}
    both = [k for k in mine if k in theirs]
    gaps = [abs(mine[k].profit - theirs[k].profit) for k in both]
    return {
        "entries_not_shared": len(mine) + len(theirs) - 2 * len(both),
        "other_exit": sum(mine[k].reason != theirs[k].reason for k in both),
        "mean_abs_profit_diff": round(sum(gaps) / len(gaps), 2) if gaps else 0.0,
    }


def backtest_modes(truth) -> dict:
    """The SMC-only backtest on the generated path, M1 detail and the truth's own ticks."""
    config = BacktestConfig(balance=50_000.0)
    runs = {
        "generated 60": run_backtest(truth.m15, config),
        "M1 detail": run_backtest(truth.m15, config, path=lambda f: M1Detail(f, truth.m1)),
        "truth ticks": run_backtest(truth.m15, config, path=lambda f: RealTicks(f, truth.ticks)),
    }
    out = {}
    for name, r in runs.items():
        m = r.metrics()
        out[name] = {
            "trades": m["trades"],
            "net_profit": m["net_profit"],
            "profit_factor": m["profit_factor"],
            "vs_m1": compare_trades(r.trades, runs["M1 detail"].trades),
            "vs_truth": compare_trades(r.trades, runs["truth ticks"].trades),
            "sl_fills": getattr(r, "fills", {}).get("sl"),
        }  # None before the fill model had it
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--bars", type=int, default=1500)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--no-backtest", action="store_true")
    args = ap.parse_args()
    modes: dict[str, dict[str, list[float]]] = {}
    backtests: dict[str, dict] = {}
    for seed in (int(s) for s in args.seeds.split(",") if s):
        truth = synthetic_truth(args.bars, seed=seed)
        paths: dict[str, TickPath] = {
            "generated 4, nearer extreme first": GeneratedPath(truth.m15, 4, order="nearer"),
            "generated 60, nearer extreme first": GeneratedPath(truth.m15, 60, order="nearer"),
            "generated 4, by bar direction": GeneratedPath(truth.m15, 4, order="direction"),
            "generated 60, by bar direction (default)": GeneratedPath(truth.m15, 60, order="direction"),
            "M1 detail": M1Detail(truth.m15, truth.m1),
        }
        for score in score_paths(truth, paths):
            m = modes.setdefault(score.mode, {"agreement": [], "timing_error_min": []})
            m["agreement"].append(score.agreement)
            m["timing_error_min"].append(score.timing_error_min)
        if not args.no_backtest:
            backtests[str(seed)] = backtest_modes(truth)
    out = {
        "bench": "intrabar",
        "bars": args.bars,
        "seeds": args.seeds,
        "modes": {
            name: {
                "agreement_mean": round(sum(v["agreement"]) / len(v["agreement"]), 4),
                "agreement_min": min(v["agreement"]),
                "timing_error_min_mean": round(sum(v["timing_error_min"]) / len(v["timing_error_min"]), 2),
            }
            for name, v in modes.items()
        },
    }
    if backtests:
        out["smc_backtest"] = {"per_seed": backtests, "total": _totals(backtests)}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


def _totals(backtests: dict[str, dict]) -> dict[str, dict]:
    total: dict[str, dict] = {}
    for runs in backtests.values():
        for name, r in runs.items():
            t = total.setdefault(
                name,
                {
                    "trades": 0,
                    "net_profit": 0.0,
                    "entries_not_shared_vs_m1": 0,
                    "other_exit_vs_m1": 0,
                    "entries_not_shared_vs_truth": 0,
                    "other_exit_vs_truth": 0,
                },
            )
            t["trades"] += r["trades"]
            t["net_profit"] = round(t["net_profit"] + r["net_profit"], 2)
            for ref in ("m1", "truth"):
                t[f"entries_not_shared_vs_{ref}"] += r[f"vs_{ref}"]["entries_not_shared"]
                t[f"other_exit_vs_{ref}"] += r[f"vs_{ref}"]["other_exit"]
    return total


if __name__ == "__main__":
    main()
