"""`python main.py backtest`: the engine over a bars file, with baselines, a report, JSON, plot and CSV."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from research.report_text import fmt_counts, fmt_pf, halt_lines, halt_marks, write_json
from research.run_files import bars_in_range, intrabar_path, write_trades


def add_backtest_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay a bars file through the live engine and the paper broker",
        description="Replays bars through the same TradingEngine the bot runs live (paper fills), "
        "and reports the strategy next to buy-and-hold, SMC-only and random-entry baselines.",
    )
    p.add_argument(
        "--data", required=True, help="bars file (parquet or CSV, MT5 columns, broker server time)"
    )
    p.add_argument("--server-tz", default="NY+7", help="broker server clock of the file (default NY+7)")
    p.add_argument("--from", dest="date_from", help="first day to trade, YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="date_to", help="last day to trade, YYYY-MM-DD (UTC, inclusive)")
    p.add_argument("--models-dir", default=None, help="model registry; without it the strategy runs SMC-only")
    p.add_argument(
        "--version",
        metavar="vNNN",
        help="with --models-dir: trade this stored version (rejected ones "
        "too) instead of the active one; nothing is activated",
    )
    p.add_argument("--balance", type=float, default=5000.0, help="starting balance in USD (default 5000)")
    p.add_argument("--commission", type=float, default=0.0, help="commission per lot per side in USD")
    p.add_argument(
        "--spread",
        type=int,
        metavar="POINTS",
        help="assume this constant spread for a file without a spread column (said in the report)",
    )
    p.add_argument("--no-baselines", action="store_true", help="skip the baseline runs")
    p.add_argument(
        "--challenger",
        action="append",
        metavar="SPEC",
        help="run a shadow challenger beside the "
        "strategy as the bot does forward (repeatable): vNNN, params:FILE.json, or vNNN+params:FILE.json; "
        "prints each with its difference to the strategy per day (research/shadow_backtest.py)",
    )
    ib = p.add_argument_group("intrabar modes (as MT5's tester): the finest one given is used")
    ib.add_argument(
        "--ticks",
        metavar="FILE",
        help="real ticks: time_msc (int64 ms, broker server time, as "
        "copy_ticks_range returns), bid, ask [, last, volume, flags]; parquet or CSV",
    )
    ib.add_argument(
        "--detail",
        metavar="FILE",
        help="M1 bars (the bars files' columns), each minute walked O -> H/L -> C with its own spread",
    )
    ib.add_argument(
        "--ticks-per-bar",
        type=int,
        default=None,
        help="ticks of the generated path from the M15 bar (default 60, one every 15 s)",
    )
    ib.add_argument(
        "--slippage",
        type=int,
        default=0,
        help="adverse slippage per fill, in points: market entries "
        "and closes, stop losses and stop-outs (a triggered stop is a market order); never take-profits",
    )
    p.add_argument("--json", dest="json_out", help="write the figures as one JSON object ('-' = stdout)")
    p.add_argument("--plot", help="write the equity curve with drawdown to this PNG")
    p.add_argument("--trades-csv", help="write every trade to this CSV")
    wf = p.add_argument_group("walk-forward")
    wf.add_argument(
        "--walk-forward",
        metavar="TRAIN:TEST[:STEP]",
        help="in bars, e.g. 6000:1500: train the models on each window, trade the next one with them, "
        "roll by STEP (default TEST); reports out-of-sample figures only",
    )
    wf.add_argument(
        "--wf-folds", type=int, default=2, help="inner walk-forward folds of each fold's training (2)"
    )
    wf.add_argument(
        "--wf-test-size",
        type=int,
        default=500,
        help="rows per inner test and validation block of each fold's training (500)",
    )
    wf.add_argument("--wf-keep-models", metavar="DIR", help="keep each fold's models in this registry folder")
    p.set_defaults(func=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> int:
    from rich.console import Console

    from research.report_text import bar_progress
    from trading.backtest import BacktestConfig, run_backtest
    from trading.bars import load_bars
    from trading.intrabar import DEFAULT_TICKS_PER_BAR, IntrabarDataError

    started = time.perf_counter()  # the whole command, for the report beside the strategy run's own time
    console = Console(stderr=args.json_out == "-")
    config = BacktestConfig(
        balance=args.balance,
        commission_per_lot=args.commission,
        slippage_points=max(0, getattr(args, "slippage", 0) or 0),
        ticks_per_bar=getattr(args, "ticks_per_bar", None) or DEFAULT_TICKS_PER_BAR,
    )
    if args.walk_forward:
        from research.walkforward_cli import cmd_walk_forward

        return cmd_walk_forward(args, console, config)
    bars = bars_in_range(
        load_bars(args.data, server_tz=args.server_tz, spread=args.spread),
        args.date_from,
        args.date_to,
        config.warmup_bars,
    )
    if getattr(args, "challenger", None):
        from research.shadow_backtest import cmd_shadow_backtest

        return cmd_shadow_backtest(args, console, config, bars)
    try:
        path, mode_note = intrabar_path(args, bars, config)
    except IntrabarDataError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    regime = signal = None
    model_note = "no models: SMC-only"
    if getattr(args, "version", None) and not args.models_dir:
        raise ValueError("--version picks a version of a model registry: give --models-dir DIR too")
    if args.models_dir:
        from models.live import SlotRegime, SlotSignal
        from models.registry import ModelRegistry, ModelSlot, load_version

        registry = ModelRegistry(Path(args.models_dir))
        bundle = load_version(registry, args.version) if args.version else registry.load_active()
        if bundle is not None:
            slot = ModelSlot(bundle)
            regime, signal = SlotRegime(slot), SlotSignal(slot)
            model_note = f"model {bundle.version}"
    runs: dict[str, Any] = {}
    with bar_progress(console, bars.height - config.warmup_bars) as tracker:
        main = run_backtest(
            bars, config, regime=regime, signal=signal, progress=tracker("strategy"), path=path
        )
        runs["strategy"] = main
        # how much the result moves with the intrabar path: generated path vs the finest data given (or,
        # with none, the other generated vertex order), so a fragile result shows
        other = None if path is not None else _other_order(config)
        rival = run_backtest(
            bars,
            config,
            regime=regime,
            signal=signal,
            progress=tracker("sensitivity"),
            path=other,
            label="sensitivity",
        )
        if not args.no_baselines:  # on the strategy's own path, config, costs and limits
            from research.baselines import run_baselines

            runs.update(run_baselines(bars, config, regime=regime, path=path, progress=tracker))
    metrics = main.metrics()
    out: dict[str, Any] = {
        "bars": main.bars,
        "seconds": round(main.seconds, 2),
        "bars_per_second": round(main.bars / main.seconds, 1) if main.seconds > 0 else None,
        "from": str(bars["time"][config.warmup_bars]),
        "to": str(bars["time"][-1]),
        "models": model_note,
        "intrabar_mode": main.intrabar_mode,
        "intrabar": mode_note,
        "detail_share": round(main.detail_share, 4),
        "ticks": main.ticks,
        "ticks_skipped": main.ticks_skipped,
        "spread_assumed_points": args.spread,
        **metrics,
        "gate_blocks": dict(main.gate_blocks.most_common()),
        "halts": [h.to_dict() for h in main.halts],
    }
    rival_m = rival.metrics()
    out["sensitivity"] = {
        "against": "generated path" if path is not None else "generated path, the other vertex order",
        "net_profit": rival_m["net_profit"],
        "trades": rival_m["trades"],
        "profit_factor": rival_m["profit_factor"],
        "delta_net_profit": round(metrics["net_profit"] - rival_m["net_profit"], 2),
    }
    if not args.no_baselines:
        from research.baselines import baseline_metrics

        out["baseline_halts"] = {k: [h.to_dict() for h in runs[k].halts] for k in ("smc_only", "random")}
        out["baselines"] = baseline_metrics(runs)
        from research.compare import versus_baselines

        out["versus"] = versus_baselines(main, runs)  # R per trade with a 95% CI: chance or not
    from trading.run_checks import run_checks

    out.update(run_checks([main], config.params, config.limits).to_json())
    out["command_seconds"] = round(time.perf_counter() - started, 2)
    out["runs"] = 2 + (0 if args.no_baselines else 3)  # strategy, sensitivity, SMC-only, random, buy-and-hold
    _report(console, out)
    console.print(out["fills_line"])
    console.print(out["coherence_line"])
    for line in halt_lines(out["halts"]) + [
        x for k, v in out.get("baseline_halts", {}).items() for x in halt_lines(v, k.replace("_", "-"))
    ]:
        console.print(line)
    if args.plot:
        from charts.equity import equity_chart

        start = (bars["time"][min(config.warmup_bars, bars.height - 1)], main.start_balance)
        Path(args.plot).write_bytes(
            equity_chart(
                main.equity_times,
                main.equity,
                main.balance if main.balance.size else None,
                title="Backtest equity",
                start=start,
                halts=halt_marks(main.halts),
            )
        )
        console.print(f"equity chart written to {args.plot}")
    if args.trades_csv:
        write_trades(Path(args.trades_csv), main)
        console.print(f"{len(main.trades)} trades written to {args.trades_csv}")
    if args.json_out:
        write_json(args.json_out, out)
    return 0


def _other_order(config: Any) -> Any:
    from trading.intrabar import GeneratedPath

    return lambda frame: GeneratedPath(frame, config.ticks_per_bar, order="nearer")


RUN_LABELS = {"strategy": "strategy", "buy_and_hold": "buy&hold", "smc_only": "SMC-only", "random": "random"}


def fmt_num(x: Any, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def report_table(out: dict[str, Any]) -> Any:
    """Metrics down, runs across: four narrow columns fit an 80-column terminal or a pipe."""
    from rich import box
    from rich.table import Table

    from trading.numbers import count, pct, signed_usd

    runs = [("strategy", out), *out.get("baselines", {}).items()]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True)
    for name, _ in runs:
        table.add_column(RUN_LABELS.get(name, name), justify="right", no_wrap=True)
    rows: list[tuple[str, Any]] = [
        ("trades", lambda m: count(m["trades"])),
        ("win rate", lambda m: pct(m["win_rate"])),
        ("profit factor", fmt_pf),
        ("expectancy", lambda m: signed_usd(m["expectancy"])),
        ("net profit", lambda m: signed_usd(m["net_profit"])),
        ("max DD %", lambda m: fmt_num(m["max_drawdown_pct"])),
        ("Sharpe", lambda m: fmt_num(m["sharpe"])),
        ("Sortino", lambda m: fmt_num(m["sortino"])),
        ("Calmar", lambda m: fmt_num(m["calmar"])),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(m) for _, m in runs))
    return table


def _report(console: Any, out: dict[str, Any]) -> None:
    for line in header_lines(out):
        console.print(line, highlight=False)
    if out.get("spread_assumed_points") is not None:
        console.print(
            f"[yellow]spread ASSUMED {out['spread_assumed_points']} points on every bar "
            "(the file has no spread column)[/yellow]"
        )
    console.print(report_table(out))
    for line in intrabar_lines(out):
        console.print(line, highlight=False)
    from research.report_text import phrase_lines

    for title, counts in (
        ("exit reasons: ", out["exit_reasons"]),
        ("gates that blocked most: ", dict(list(out["gate_blocks"].items())[:6])),
    ):
        for line in phrase_lines(title, fmt_counts(counts).split(", ")):
            console.print(line, highlight=False)
    # the verdict against the baselines is the statistics' alone (R per trade with a 95% CI,
    # research.compare); the net figures stay in the table above
    for line in out.get("versus", {}).get("verdicts", []):
        console.print(f"The strategy {line}.", highlight=False)


def header_lines(out: dict[str, Any]) -> list[str]:
    """The range in WIB (UTC hours beside it), the bars and models, and the time of the strategy run and
    of the whole command (loading, the other runs), each speed saying what it covers."""
    from research.report_text import phrase_lines, span
    from trading.numbers import count

    lines = [
        f"[bold]Backtest[/bold] {span(out['from'], out['to'])}",
        f"{count(out['bars'])} bars, {out['models']}",
    ]
    timing = [
        f"strategy run {out['seconds']:,.1f} s"
        + (
            f" ({count(round(out['bars_per_second']))} bars/s, analysis included)"
            if out.get("bars_per_second")
            else ""
        )
    ]
    whole = out.get("command_seconds")
    if whole:
        runs = out.get("runs", 1)
        timing.append(
            f"whole command {whole:,.1f} s ({count(round(out['bars'] * runs / whole))} bars/s over its "
            f"{runs} runs, with loading)"
        )
    return lines + phrase_lines("time: ", timing, sep="; ")


def intrabar_lines(out: dict[str, Any]) -> list[str]:
    """How the bars were walked, with the tick counts that say what was computed: the ticks on the path,
    those stepped one by one and those taken in one go (where no rule could act: exact)."""
    from research.report_text import phrase_lines
    from trading.numbers import count, signed_usd

    stepped, skipped = out.get("ticks", 0), out.get("ticks_skipped", 0)
    lines = phrase_lines(
        "intrabar: ",
        [
            f"{out['intrabar']}",
            f"{count(stepped + skipped)} ticks on the path",
            f"{count(stepped)} stepped one by one",
            f"{count(skipped)} taken in one go where no rule could act (exact)",
            f"{out['detail_share']:.1%} of bars with real detail",
        ],
    )
    sens = out.get("sensitivity")
    if sens:
        lines += phrase_lines(
            "sensitivity: ",
            [
                f"{sens['against']} gives {count(sens['trades'])} trades",
                f"net {signed_usd(sens['net_profit'])} (PF {fmt_num(sens['profit_factor'])})",
                f"this result moves by {signed_usd(sens['delta_net_profit'])}",
            ],
        )
    return lines
