"""`python main.py optimize`: walk-forward optimisation with Optuna, judged on a hold-out it never saw.

Prints the chosen parameters, their hold-out figures against buy-and-hold, SMC-only, random entries
and the current defaults, the deflated Sharpe ratio for the number of trials, the probability of
backtest overfitting (CSCV) and the change one grid step around the chosen point. It never changes
a setting: when the chosen set survives every check it writes a proposal file, otherwise it says
that no edge was found.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def add_optimize_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "optimize",
        help="walk-forward optimisation of the strategy's numbers (Optuna), scored out of sample only",
        description="Searches the ranges declared in trading/parameters.py (SEARCH_SPACE) with Optuna's TPE "
        "sampler. Every trial is scored on out-of-sample walk-forward folds only; a final hold-out window, "
        "never seen by the search, judges the chosen set against the baselines and the defaults. "
        "Never changes a setting; writes a proposal file only when the result survives every check.",
    )
    p.add_argument(
        "--data", required=True, help="bars file (parquet or CSV, MT5 columns, broker server time)"
    )
    p.add_argument("--server-tz", default="NY+7", help="broker server clock of the file (default NY+7)")
    p.add_argument(
        "--trials", type=int, default=40, help="complete trials the study should hold (default 40)"
    )
    p.add_argument("--study", default="xaubot", help="study name (default xaubot)")
    p.add_argument(
        "--storage",
        default="data/optimize.db",
        help="SQLite file of the study; an existing study of that name resumes (default data/optimize.db)",
    )
    p.add_argument("--seed", type=int, default=42, help="TPE sampler seed (default 42)")
    p.add_argument(
        "--folds", type=int, default=3, help="walk-forward folds the trials are scored on (default 3)"
    )
    p.add_argument(
        "--train-bars", type=int, default=4000, help="bars each fold's models train on (default 4000)"
    )
    p.add_argument(
        "--holdout-bars",
        type=int,
        default=2000,
        help="final bars held out of the search for the report (default 2000)",
    )
    p.add_argument(
        "--min-trades",
        type=int,
        default=None,
        help="trades a set needs over the folds to be scored; below it a set is never chosen "
        "(default: one per 200 fold bars, at least 10)",
    )
    p.add_argument(
        "--smc-only", action="store_true", help="no models: search the SMC strategy's numbers only"
    )
    p.add_argument("--workers", type=int, default=1, help="local processes scoring trials (default 1)")
    p.add_argument(
        "--ray", metavar="ADDRESS", help="score trials as Ray tasks on this cluster ('auto' or host:port)"
    )
    p.add_argument(
        "--batch",
        type=int,
        default=4,
        help="trials asked per round (default 4); results depend on it and the seed, not on workers",
    )
    p.add_argument("--balance", type=float, default=5000.0, help="starting balance in USD (default 5000)")
    p.add_argument("--commission", type=float, default=0.0, help="commission per lot per side in USD")
    p.add_argument("--json", dest="json_out", help="write the report as one JSON object ('-' = stdout)")
    p.add_argument("--plot", help="PNG of the trials (default: <storage dir>/<study>-trials.png)")
    p.add_argument(
        "--proposal",
        help="where a surviving result is proposed (default: <storage dir>/<study>-proposal.json)",
    )
    p.set_defaults(func=cmd_optimize)


def _executor(args: argparse.Namespace, data: Any) -> Any:
    from research.optimize import LocalExecutor, RayExecutor

    if args.ray:
        if args.workers != 1:
            raise ValueError("use either --workers (local processes) or --ray (cluster tasks), not both")
        return RayExecutor(data, args.ray)
    return LocalExecutor(data, args.workers)


def cmd_optimize(args: argparse.Namespace) -> int:
    if not args.ray:
        return _optimize(args)
    if args.workers != 1:
        raise ValueError("use either --workers (local processes) or --ray (cluster tasks), not both")
    from research.ray_connect import connect

    ray = connect(args.ray)  # before anything is loaded, prepared or stored: a wrong address costs a second
    try:
        return _optimize(args)
    finally:
        ray.shutdown()


def _optimize(args: argparse.Namespace) -> int:
    from rich.console import Console

    from research import optimize as opt
    from research.optimize_report import build_report, plot, render
    from research.report_text import bar_progress, status_lines
    from trading.backtest import BacktestConfig
    from trading.bars import load_bars

    if args.trials < 1:
        raise ValueError(f"--trials must be at least 1 (got {args.trials})")
    if args.workers < 1 or args.batch < 1:
        raise ValueError("--workers and --batch must be at least 1")
    console = Console(stderr=args.json_out == "-")
    storage = Path(args.storage)
    storage.parent.mkdir(parents=True, exist_ok=True)
    bars = load_bars(args.data, server_tz=args.server_tz)
    config = BacktestConfig(balance=args.balance, commission_per_lot=args.commission)
    plan = opt.plan_optimization(
        bars.height, args.folds, args.holdout_bars, args.train_bars, config.warmup_bars
    )
    min_trades = (
        args.min_trades if args.min_trades is not None else opt.min_trades_for(plan.folds, plan.test_bars)
    )
    if min_trades < 1:
        raise ValueError(f"--min-trades must be at least 1 (got {min_trades})")
    t0 = time.perf_counter()
    with status_lines(console, "preparing the windows") as status:
        data = opt.prepare(
            bars, plan, config, use_models=not args.smc_only, min_trades=min_trades, progress=status
        )
    prep_seconds = time.perf_counter() - t0
    study = opt.open_study(args.study, storage, args.seed, opt.fingerprint(bars, plan, data))
    before = len(opt.trial_records(study))
    executor = _executor(args, data)
    try:
        t1 = time.perf_counter()
        with bar_progress(console, args.trials, unit="trials") as tracker:  # plain lines on stderr in a pipe
            opt.run_trials(study, executor, data.space, args.trials, args.batch, progress=tracker("trials"))
        search_seconds = time.perf_counter() - t1
        ran = len(opt.trial_records(study)) - before
        with status_lines(console, "sensitivity and hold-out"):
            out = build_report(study, data, executor)
    finally:
        executor.close()
    out.update(
        {
            "study": args.study,
            "storage": str(storage),
            "seed": args.seed,
            "batch": args.batch,
            "workers": "ray " + args.ray if args.ray else args.workers,
            "data": str(args.data),
            "plan": {
                "folds": plan.folds,
                "train_bars": plan.train_bars,
                "test_bars": plan.test_bars,
                "holdout_bars": plan.holdout_bars,
                "warmup_bars": plan.warmup,
            },
            "windows": [
                {
                    "name": w.name,
                    "from": str(w.test_from),
                    "to": str(w.test_to),
                    "model": w.model_version or "none",
                }
                for w in (*data.folds, data.holdout)
            ],
            "prepare_seconds": round(prep_seconds, 1),
            "trials_run_now": ran,
            "trials_per_minute": round(ran / search_seconds * 60, 2) if ran and search_seconds > 0 else None,
        }
    )
    target_png = Path(args.plot) if args.plot else storage.parent / f"{args.study}-trials.png"
    plot(target_png, study.study_name, out)
    out["plot"] = str(target_png)
    out["proposal"] = None
    if out["verdict"]["survives"]:
        target = Path(args.proposal) if args.proposal else storage.parent / f"{args.study}-proposal.json"
        target.write_text(
            json.dumps(
                {
                    "proposed": out["chosen"]["values"],
                    "defaults": out["defaults"],
                    "study": args.study,
                    "holdout": out["holdout"]["chosen"],
                    "note": "a proposal only: no setting was changed",
                },
                default=str,
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        out["proposal"] = str(target)
    render(console, out)
    if args.json_out:
        from research.backtest_cli import write_json

        write_json(args.json_out, out)
    return 0
