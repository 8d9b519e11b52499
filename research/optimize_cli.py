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
    p.add_argument("--data", required=True, help="bars file (parquet or CSV, MT5 columns, broker server time)")
    p.add_argument("--server-tz", default="NY+7", help="broker server clock of the file (default NY+7)")
    p.add_argument("--trials", type=int, default=40, help="complete trials the study should hold (default 40)")
    p.add_argument("--study", default="xaubot", help="study name (default xaubot)")
    p.add_argument("--storage", default="data/optimize.db",
                   help="SQLite file of the study; an existing study of that name resumes (default data/optimize.db)")
    p.add_argument("--seed", type=int, default=42, help="TPE sampler seed (default 42)")
    p.add_argument("--folds", type=int, default=3, help="walk-forward folds the trials are scored on (default 3)")
    p.add_argument("--train-bars", type=int, default=4000, help="bars each fold's models train on (default 4000)")
    p.add_argument("--holdout-bars", type=int, default=2000,
                   help="final bars held out of the search for the report (default 2000)")
    p.add_argument("--min-trades", type=int, default=30,
                   help="a set trading fewer times over the folds scores below any real Sharpe (default 30)")
    p.add_argument("--smc-only", action="store_true", help="no models: search the SMC strategy's numbers only")
    p.add_argument("--workers", type=int, default=1, help="local processes scoring trials (default 1)")
    p.add_argument("--ray", metavar="ADDRESS", help="score trials as Ray tasks on this cluster ('auto' or host:port)")
    p.add_argument("--batch", type=int, default=4,
                   help="trials asked per round (default 4); results depend on it and the seed, not on workers")
    p.add_argument("--balance", type=float, default=5000.0, help="starting balance in USD (default 5000)")
    p.add_argument("--commission", type=float, default=0.0, help="commission per lot per side in USD")
    p.add_argument("--json", dest="json_out", help="write the report as one JSON object ('-' = stdout)")
    p.add_argument("--plot", help="PNG of the trials (default: <storage dir>/<study>-trials.png)")
    p.add_argument("--proposal", help="where a surviving result is proposed (default: <storage dir>/<study>-proposal.json)")
    p.set_defaults(func=cmd_optimize)


def _executor(args: argparse.Namespace, data: Any) -> Any:
    from research.optimize import LocalExecutor, RayExecutor

    if args.ray:
        if args.workers != 1:
            raise ValueError("use either --workers (local processes) or --ray (cluster tasks), not both")
        return RayExecutor(data, args.ray)
    return LocalExecutor(data, args.workers)


def cmd_optimize(args: argparse.Namespace) -> int:
    if args.ray:
        from research.ray_connect import check_reachable

        check_reachable(args.ray)  # before anything is loaded or prepared: a wrong address costs a second
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from research import optimize as opt
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
    plan = opt.plan_optimization(bars.height, args.folds, args.holdout_bars, args.train_bars, config.warmup_bars)
    t0 = time.perf_counter()
    with console.status("preparing the windows") as status:
        data = opt.prepare(bars, plan, config, use_models=not args.smc_only,
                           min_trades=args.min_trades, progress=status.update)
    prep_seconds = time.perf_counter() - t0
    study = opt.open_study(args.study, storage, args.seed, opt.fingerprint(bars, plan, data))
    before = len(opt.trial_records(study))
    executor = _executor(args, data)
    try:
        t1 = time.perf_counter()
        with Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task("trials", total=args.trials)
            opt.run_trials(study, executor, data.space, args.trials, args.batch,
                           progress=lambda done, total: progress.update(task, completed=done, total=total))
        search_seconds = time.perf_counter() - t1
        ran = len(opt.trial_records(study)) - before
        with console.status("sensitivity and hold-out"):
            out = build_report(study, data, executor)
    finally:
        executor.close()
    out.update({
        "study": args.study, "storage": str(storage), "seed": args.seed, "batch": args.batch,
        "workers": "ray " + args.ray if args.ray else args.workers, "data": str(args.data),
        "plan": {"folds": plan.folds, "train_bars": plan.train_bars, "test_bars": plan.test_bars,
                 "holdout_bars": plan.holdout_bars, "warmup_bars": plan.warmup},
        "windows": [{"name": w.name, "from": str(w.test_from), "to": str(w.test_to), "model": w.model_version or "none"}
                    for w in (*data.folds, data.holdout)],
        "prepare_seconds": round(prep_seconds, 1), "trials_run_now": ran,
        "trials_per_minute": round(ran / search_seconds * 60, 2) if ran and search_seconds > 0 else None,
    })
    plot = Path(args.plot) if args.plot else storage.parent / f"{args.study}-trials.png"
    _plot(plot, study, out)
    out["plot"] = str(plot)
    out["proposal"] = None
    if out["verdict"]["survives"]:
        target = Path(args.proposal) if args.proposal else storage.parent / f"{args.study}-proposal.json"
        target.write_text(json.dumps({"proposed": out["chosen"]["values"], "defaults": out["defaults"],
                                      "study": args.study, "holdout": out["holdout"]["chosen"],
                                      "note": "a proposal only: no setting was changed"}, default=str, indent=2)
                          + "\n", encoding="utf-8")
        out["proposal"] = str(target)
    render(console, out)
    if args.json_out:
        from research.backtest_cli import write_json

        write_json(args.json_out, out)
    return 0


def build_report(study: Any, data: Any, executor: Any) -> dict[str, Any]:
    """Every figure of the report, as plain data."""
    import numpy as np

    from research import optimize as opt
    from research.overfitting import cscv_pbo, deflated_sharpe, sharpe
    from research.walkforward import buy_and_hold_chained

    records = opt.trial_records(study)
    if not records:
        raise ValueError("the study holds no complete trial")
    best = max(records, key=lambda r: (r.objective, -r.number))
    chosen = {k: best.values[k] for k in data.space}
    defaults = opt.default_values(data.space)
    around = opt.neighbours(chosen, data.space)
    scored = executor.map([defaults] + [v for _, _, v in around])
    default_folds, around_scores = scored[0], scored[1:]
    sensitivity = [{"param": name, "value": value, "objective": round(s.objective, 4),
                    "change": round(s.objective - best.objective, 4)}
                   for (name, value, _), s in zip(around, around_scores, strict=True)]
    holdout = {
        "chosen": opt.score(chosen, data, [data.holdout]),
        "defaults": opt.score(defaults, data, [data.holdout]),
        "smc_only": opt.score(chosen, data, [data.holdout], "smc_only"),
        "random": opt.score(chosen, data, [data.holdout], "random"),
    }
    holdout_metrics = {k: {**_brief(s.metrics), "objective": round(s.objective, 4)} for k, s in holdout.items()}
    holdout_metrics["buy_and_hold"] = _brief(buy_and_hold_chained([data.holdout.bars], data.config))
    rows = [r for r in records if len(r.daily_returns) == len(best.daily_returns)]
    trial_srs = np.array([sharpe(np.asarray(r.daily_returns)) for r in rows])
    dsr = deflated_sharpe(np.asarray(best.daily_returns), len(records), trial_srs)
    pbo = None
    blocks = opt.cscv_blocks(len(best.daily_returns))
    if len(rows) >= 2 and blocks is not None:
        res = cscv_pbo(np.column_stack([np.asarray(r.daily_returns) for r in rows]), blocks=blocks)
        pbo = {"pbo": round(res.pbo, 4), "splits": res.n_splits, "blocks": res.blocks, "variants": len(rows),
               "median_logit": round(float(np.median(res.logits)), 4)}
    v = opt.verdict(holdout_metrics, dsr.probability, None if pbo is None else pbo["pbo"])
    if best.trades < data.min_trades:
        v.reasons.insert(0, f"no trial traded at least {data.min_trades} times over the folds")
        v.survives = False
    if pbo is None:
        v.reasons.append("too few trials or days for CSCV: overfitting could not be measured")
        v.survives = False
    worst = min((s["change"] for s in sensitivity), default=0.0)
    return {
        "trials": len(records),
        "chosen": {"number": best.number, "values": chosen, "folds_objective": round(best.objective, 4),
                   "folds_trades": best.trades, "folds_net_profit": best.net_profit},
        "defaults": defaults,
        "folds": {"chosen_objective": round(best.objective, 4), "defaults_objective": round(default_folds.objective, 4),
                  "defaults": _brief(default_folds.metrics), "defaults_halts": list(default_folds.halts)},
        "holdout": holdout_metrics,
        "holdout_halts": {k: list(s.halts) for k, s in holdout.items()},
        "deflated_sharpe": {"dsr": round(dsr.probability, 4), "sharpe_daily": round(dsr.sharpe, 4),
                            "sr0_daily": round(dsr.benchmark, 4), "days": dsr.n_obs, "trials": dsr.n_trials,
                            "skew": round(dsr.skew, 3), "kurtosis": round(dsr.kurt, 3)},
        "pbo": pbo,
        "sensitivity": sensitivity,
        "sensitivity_worst_change": round(worst, 4),
        "verdict": {"survives": v.survives, "reasons": v.reasons},
        "trial_objectives": [[r.number, round(r.objective, 4)] for r in records],
    }


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("trades", "win_rate", "profit_factor", "net_profit", "final_equity",
                              "max_drawdown_pct", "sharpe")}


def _plot(path: Path, study: Any, out: dict[str, Any]) -> None:
    from charts.optimize import trials_chart
    from research.optimize import TOO_FEW_TRADES

    valid = [(n, s) for n, s in out["trial_objectives"] if s > TOO_FEW_TRADES + 1]
    numbers, scores = [n for n, _ in valid], [s for _, s in valid]
    hidden = len(out["trial_objectives"]) - len(valid)
    reference = out["folds"]["defaults_objective"]
    path.write_bytes(trials_chart(numbers, scores, chosen=out["chosen"]["number"],
                                  reference=reference if reference > TOO_FEW_TRADES + 1 else None,
                                  title=f"Study {study.study_name}: trials", score_label="annualised Sharpe, folds",
                                  note=f"{hidden} with too few trades not shown" if hidden else ""))


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def render(console: Any, out: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    from research.optimize import TOO_FEW_TRADES

    w = out["windows"]
    console.print(f"[bold]Optimisation[/bold] study {out['study']!r}: {out['trials']} trials "
                  f"({out['trials_run_now']} now, {out['trials_per_minute'] or 'n/a'} trials/min, "
                  f"workers {out['workers']}, batch {out['batch']}, seed {out['seed']})")
    console.print("scored on " + ", ".join(f"{x['name']} {x['from'][:10]}→{x['to'][:10]}" for x in w[:-1])
                  + f"; hold-out (never searched) {w[-1]['from'][:10]}→{w[-1]['to'][:10]}")
    params = Table("parameter", "chosen", "default", "worst Δ one step", box=box.SIMPLE_HEAD, pad_edge=False)
    by_param: dict[str, float] = {}
    for s in out["sensitivity"]:
        by_param[s["param"]] = min(by_param.get(s["param"], 0.0), s["change"])
    for k, v in out["chosen"]["values"].items():
        change = by_param.get(k, 0.0)
        params.add_row(k, f"{v:g}", f"{out['defaults'][k]:g}", "too few trades" if change < -50 else f"{change:+.2f}")
    console.print(params)
    console.print(f"folds (out of sample): chosen Sharpe {out['folds']['chosen_objective']:.2f} "
                  f"({out['chosen']['folds_trades']} trades, ${out['chosen']['folds_net_profit']:+,.2f}), "
                  f"defaults {out['folds']['defaults_objective']:.2f} ({out['folds']['defaults']['trades']} trades, "
                  f"${out['folds']['defaults']['net_profit']:+,.2f}); below {TOO_FEW_TRADES + 1:.0f}: "
                  f"fewer than the minimum trades")
    table = Table("hold-out", "trades", "win", "PF", "net $", "DD %", "Sharpe", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, m in out["holdout"].items():
        table.add_row(name.replace("_", " "), str(m["trades"]), f"{m['win_rate']:.0%}", _num(m["profit_factor"]),
                      f"{m['net_profit']:+.2f}", _num(m["max_drawdown_pct"]), _num(m["sharpe"]))
    console.print(table)
    for name, halts in out["holdout_halts"].items():
        for h in halts:
            console.print(f"hold-out {name}: halted {h['start'][:16]} → {(h['end'] or 'end of data')[:16]} "
                          f"({h['reason']}): {h['bars']} bars, {h['setups_blocked']} with a setup kept out")
    d = out["deflated_sharpe"]
    console.print(f"deflated Sharpe ratio {d['dsr']:.2f} (daily Sharpe {d['sharpe_daily']:.3f} vs "
                  f"{d['sr0_daily']:.3f} expected from the best of {d['trials']} skill-less trials, {d['days']} days)")
    if out["pbo"]:
        p = out["pbo"]
        console.print(f"probability of backtest overfitting (CSCV, {p['blocks']} blocks, {p['splits']} splits, "
                      f"{p['variants']} trials): {p['pbo']:.0%}")
    console.print(f"one grid step around the chosen point: the fold Sharpe changes by at worst "
                  f"{out['sensitivity_worst_change']:+.2f}")
    if out["verdict"]["survives"]:
        console.print(f"[green]The chosen set survives every check.[/green] Proposal written to {out['proposal']} "
                      "(no setting was changed).")
    else:
        console.print("[yellow]No edge found: the defaults stay as they are.[/yellow]")
        for reason in out["verdict"]["reasons"]:
            console.print(f"  - {reason}")
    console.print(f"plot of the trials: {out['plot']}")
