"""`python main.py backtest --walk-forward TRAIN:TEST[:STEP]`: per-fold table and out-of-sample totals."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from research.report_text import bar_progress, fmt_counts, fmt_pf, halt_lines, halt_marks, write_json
from research.run_files import bars_in_range, intrabar_path, write_trades
from trading.backtest import BacktestConfig


def cmd_walk_forward(args: argparse.Namespace, console: Any, config: BacktestConfig) -> int:
    from research.walkforward import TrainOptions, parse_spec, plan_folds, walk_forward
    from trading.bars import load_bars

    if args.models_dir or getattr(args, "version", None):
        raise ValueError(
            "--walk-forward trains its own models on each window; drop --models-dir/--version "
            "(use --wf-keep-models DIR to keep them)"
        )
    train, test, step = parse_spec(args.walk_forward)
    bars = bars_in_range(
        load_bars(args.data, server_tz=args.server_tz, spread=args.spread), args.date_from, args.date_to, 0
    )
    plans = plan_folds(bars.height, train, test, step, config.warmup_bars)  # bad windows fail here, fast
    n_folds = len(plans)
    # the finest intrabar data given, checked against the traded bars (the first test window's warm-up on)
    path, mode_note = intrabar_path(args, bars.slice(plans[0].test.start - config.warmup_bars), config)
    options = TrainOptions(n_folds=args.wf_folds, test_size=args.wf_test_size, valid_size=args.wf_test_size)
    t0 = time.perf_counter()
    with bar_progress(console, n_folds, unit="folds") as tracker:  # plain lines on stderr in a pipe
        track = tracker("walk-forward")
        done = [0]

        def report(stage: str, k: int, n: int) -> None:
            if stage == "done":
                done[0] = k
            track(done[0], n, f"fold {min(k + 1, n)}/{n}: {stage}" if stage != "done" else "")

        result = walk_forward(
            bars,
            train,
            test,
            step,
            config,
            options,
            models_dir=args.wf_keep_models,
            progress=report,
            path=path,
        )
    seconds = time.perf_counter() - t0
    wf = result.to_json_dict()
    out: dict[str, Any] = {
        "bars": bars.height,
        "out_of_sample_bars": wf["out_of_sample_bars"],
        "seconds": round(seconds, 2),
        "from": str(bars["time"][0]),
        "to": str(bars["time"][-1]),
        "models": f"walk-forward {train}:{test}:{result.step}, a fresh model per fold",
        "intrabar": mode_note,
        "spread_assumed_points": args.spread,
        "walk_forward": wf,
    }
    if result.folds:  # a rule fired if it fired in any fold; the fills of every fold
        from trading.run_checks import run_checks

        out.update(run_checks([f.strategy for f in result.folds], config.params, config.limits).to_json())
    _report(console, out)
    if args.plot:
        from charts.equity import equity_chart

        png = equity_chart(
            result.strategy.times,
            result.strategy.equity_array(),
            title="Walk-forward equity (OOS)",
            halts=halt_marks(result.strategy.halts),
        )
        Path(args.plot).write_bytes(png)
        console.print(f"equity chart written to {args.plot}")
    if args.trades_csv:
        write_trades(Path(args.trades_csv), result.strategy)
        console.print(f"{len(result.strategy.trades)} out-of-sample trades written to {args.trades_csv}")
    if args.json_out:
        write_json(args.json_out, out)
    return 0


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _day(iso: str) -> str:
    return iso[5:10]  # "2025-07-16 15:00:00+00:00" -> "07-16"; the header line gives the years


def _auc(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _report(console: Any, out: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    wf = out["walk_forward"]
    console.print(
        f"[bold]Walk-forward[/bold] {out['from']} → {out['to']}: {len(wf['folds'])} folds, "
        f"{wf['out_of_sample_bars']} out-of-sample bars in {out['seconds']} s "
        f"(train {wf['train_bars']}, test {wf['test_bars']}, step {wf['step']} bars)"
    )
    folds = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        title="out-of-sample folds (AUC wf: own walk-forward; oos: on the test window)",
    )
    for name in ("#", "train", "test", "AUC wf", "AUC oos", "trades", "net $", "win", "SMC n", "SMC $"):
        folds.add_column(name, no_wrap=True, justify="left" if name in ("train", "test") else "right")
    for f in wf["folds"]:
        folds.add_row(
            str(f["fold"]),
            f"{_day(f['train_from'])}→{_day(f['train_to'])}",
            f"{_day(f['test_from'])}→{_day(f['test_to'])}",
            _auc(f["model_auc"]),
            _auc(f["test_auc"]),
            str(f["trades"]),
            f"{f['net_profit']:+.0f}",
            _pct(f["win_rate"]),
            str(f["smc_only_trades"]),
            f"{f['smc_only_net_profit']:+.0f}",
        )
    if out.get("spread_assumed_points") is not None:
        console.print(
            f"[yellow]spread ASSUMED {out['spread_assumed_points']} points on every bar "
            "(the file has no spread column)[/yellow]"
        )
    console.print(folds)
    total = Table(
        "out of sample",
        "trades",
        "win",
        "PF",
        "net $",
        "equity",
        "DD %",
        "Sharpe",
        "Sortino",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    names = {"smc_only": "SMC-only", "random": "random", "buy_and_hold": "buy-and-hold"}
    for name, m in (("strategy", wf["overall"]), *((names[k], v) for k, v in wf["baselines"].items())):
        total.add_row(
            name,
            str(m["trades"]),
            _pct(m["win_rate"]),
            fmt_pf(m),
            f"{m['net_profit']:+,.2f}",
            f"{m['final_equity']:.0f}",
            _num(m["max_drawdown_pct"]),
            _num(m["sharpe"]),
            _num(m["sortino"]),
        )
    console.print(total)
    console.print(f"gates that blocked the strategy most: {fmt_counts(wf['gate_blocks'], 6)}")
    for line in halt_lines(wf["halts"]) + [
        x for k, v in wf["baseline_halts"].items() for x in halt_lines(v, names[k])
    ]:
        console.print(line)
    if wf["untested_bars"]:
        console.print(f"{wf['untested_bars']} bars after the last complete test window were not traded")
    if out.get("intrabar"):
        console.print(f"intrabar: {out['intrabar']}; the baselines walk the same path")
    for key in ("fills_line", "coherence_line"):  # over all folds (trading.run_checks)
        if out.get(key):
            console.print(out[key])
    beaten = [names[k] for k, m in wf["baselines"].items() if wf["overall"]["net_profit"] <= m["net_profit"]]
    if beaten:
        console.print(
            f"[yellow]As one chained account, the strategy makes no more than {', '.join(beaten)} on "
            "these windows.[/yellow]"
        )
    if wf.get("fresh"):
        from research.compare_report import print_fresh

        print_fresh(console, wf["fresh"])
