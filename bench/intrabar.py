"""Which intrabar path is least wrong: each mode against a 1-second synthetic tick truth.

`trading.intrabar.synthetic_truth` makes a random-walk market at 1-second ticks and aggregates it to M1
and M15 as a broker would; each path built from the M15 (or M1) bars is then scored on bracket orders
(long entry at each bar's open, stop and target at 1/4, 1/2 and 1 mean bar range, 4 bars to hit):
the share of brackets whose outcome matches the truth's, and the mean error of the hit time.
`python bench/intrabar.py [--json] [--bars N] [--seeds 1,2,3]`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.intrabar import GeneratedPath, M1Detail, score_paths, synthetic_truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--bars", type=int, default=1500)
    ap.add_argument("--seeds", default="1,2,3")
    args = ap.parse_args()
    modes: dict[str, dict[str, list[float]]] = {}
    for seed in (int(s) for s in args.seeds.split(",") if s):
        truth = synthetic_truth(args.bars, seed=seed)
        paths = {
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
    out = {"bench": "intrabar", "bars": args.bars, "seeds": args.seeds, "modes": {
        name: {"agreement_mean": round(sum(v["agreement"]) / len(v["agreement"]), 4),
               "agreement_min": min(v["agreement"]),
               "timing_error_min_mean": round(sum(v["timing_error_min"]) / len(v["timing_error_min"]), 2)}
        for name, v in modes.items()}}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
