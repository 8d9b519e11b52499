"""`python main.py backtest`: the engine over a bars file, with baselines, a report, JSON, plot and CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl


def add_backtest_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay a bars file through the live engine and the paper broker",
        description="Replays bars through the same TradingEngine the bot runs live (paper fills), "
        "and reports the strategy next to buy-and-hold, SMC-only and random-entry baselines.",
    )
    p.add_argument("--data", required=True, help="bars file (parquet or CSV, MT5 columns, broker server time)")
    p.add_argument("--server-tz", default="NY+7", help="broker server clock of the file (default NY+7)")
    p.add_argument("--from", dest="date_from", help="first day to trade, YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="date_to", help="last day to trade, YYYY-MM-DD (UTC, inclusive)")
    p.add_argument("--models-dir", default=None, help="model registry; without it the strategy runs SMC-only")
    p.add_argument("--balance", type=float, default=5000.0, help="starting balance in USD (default 5000)")
    p.add_argument("--commission", type=float, default=0.0, help="commission per lot per side in USD")
    p.add_argument("--no-baselines", action="store_true", help="skip the baseline runs")
    p.add_argument("--json", dest="json_out", help="write the figures as one JSON object ('-' = stdout)")
    p.add_argument("--plot", help="write the equity curve with drawdown to this PNG")
    p.add_argument("--trades-csv", help="write every trade to this CSV")
    wf = p.add_argument_group("walk-forward")
    wf.add_argument("--walk-forward", metavar="TRAIN:TEST[:STEP]",
                    help="in bars, e.g. 6000:1500: train the models on each window, trade the next one with them, "
                    "roll by STEP (default TEST); reports out-of-sample figures only")
    wf.add_argument("--wf-folds", type=int, default=2, help="inner walk-forward folds of each fold's training (2)")
    wf.add_argument("--wf-test-size", type=int, default=500,
                    help="rows per inner test and validation block of each fold's training (500)")
    wf.add_argument("--wf-keep-models", metavar="DIR", help="keep each fold's models in this registry folder")
    p.set_defaults(func=cmd_backtest)


def _slice(bars: pl.DataFrame, date_from: str | None, date_to: str | None, warmup: int) -> pl.DataFrame:
    """Keep the warm-up bars before --from so the first traded bar has its full history."""
    start = 0
    if date_from:
        t = datetime.fromisoformat(date_from).replace(tzinfo=UTC)
        start = max(0, int(bars["time"].search_sorted(t)) - warmup)
    end = bars.height
    if date_to:
        t = datetime.fromisoformat(date_to).replace(tzinfo=UTC) + (datetime(2000, 1, 2) - datetime(2000, 1, 1))
        end = int(bars["time"].search_sorted(t))
    if end - start <= warmup:
        raise ValueError(f"only {max(end - start, 0)} bars in the range; need more than the {warmup}-bar warm-up")
    return bars.slice(start, end - start)


def cmd_backtest(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from trading.backtest import BacktestConfig, RandomSide, buy_and_hold, run_backtest
    from trading.bars import load_bars

    console = Console(stderr=args.json_out == "-")
    config = BacktestConfig(balance=args.balance, commission_per_lot=args.commission)
    if args.walk_forward:
        from research.walkforward_cli import cmd_walk_forward

        return cmd_walk_forward(args, console, config)
    bars = _slice(load_bars(args.data, server_tz=args.server_tz), args.date_from, args.date_to, config.warmup_bars)
    regime = signal = None
    model_note = "no models: SMC-only"
    if args.models_dir:
        from models.live import SlotRegime, SlotSignal
        from models.registry import ModelRegistry, ModelSlot

        bundle = ModelRegistry(Path(args.models_dir)).load_active()
        if bundle is not None:
            slot = ModelSlot(bundle)
            regime, signal = SlotRegime(slot), SlotSignal(slot)
            model_note = f"model {bundle.version}"
    runs: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} bars"),
                  TimeRemainingColumn(), console=console, transient=True) as progress:

        def tracker(label: str):
            task = progress.add_task(label, total=bars.height - config.warmup_bars)
            return lambda done, total: progress.update(task, completed=done, total=total)

        main = run_backtest(bars, config, regime=regime, signal=signal, progress=tracker("strategy"))
        runs["strategy"] = main
        if not args.no_baselines:
            smc_gates = config.params.disabled_gates | {"ml_confidence", "ml_agreement"}
            smc_cfg = replace(config, params=replace(config.params, disabled_gates=smc_gates))
            runs["smc_only"] = run_backtest(bars, smc_cfg, regime=regime, progress=tracker("SMC-only"))
            # random entries: a coin picks each setup's side, same exits, without the ML gates
            runs["random"] = run_backtest(bars, smc_cfg, regime=regime, progress=tracker("random"),
                                          analyzer_wrapper=lambda a: RandomSide(a, seed=7), label="random")
    metrics = main.metrics()
    out: dict[str, Any] = {
        "bars": main.bars,
        "seconds": round(main.seconds, 2),
        "bars_per_second": round(main.bars / main.seconds, 1) if main.seconds > 0 else None,
        "from": str(bars["time"][config.warmup_bars]),
        "to": str(bars["time"][-1]),
        "models": model_note,
        **metrics,
        "gate_blocks": dict(main.gate_blocks.most_common()),
        "halts": [h.to_dict() for h in main.halts],
    }
    if not args.no_baselines:
        out["baseline_halts"] = {k: [h.to_dict() for h in runs[k].halts] for k in ("smc_only", "random")}
    if not args.no_baselines:
        out["baselines"] = {
            "buy_and_hold": buy_and_hold(bars, config),
            "smc_only": runs["smc_only"].metrics(),
            "random": runs["random"].metrics(),
        }
    _report(console, out)
    from research.walkforward_cli import halt_lines, halt_marks

    for line in halt_lines(out["halts"]) + [x for k, v in out.get("baseline_halts", {}).items()
                                            for x in halt_lines(v, k.replace("_", "-"))]:
        console.print(line)
    if args.plot:
        from charts.equity import equity_chart

        Path(args.plot).write_bytes(equity_chart(main.equity_times, main.equity, title="Backtest equity",
                                                 halts=halt_marks(main.halts)))
        console.print(f"equity chart written to {args.plot}")
    if args.trades_csv:
        _write_trades(Path(args.trades_csv), main)
        console.print(f"{len(main.trades)} trades written to {args.trades_csv}")
    if args.json_out:
        write_json(args.json_out, out)
    return 0


def write_json(target: str, out: dict[str, Any]) -> None:
    text = json.dumps(out, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")


def _report(console: Any, out: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]Backtest[/bold] {out['from']} → {out['to']}: {out['bars']} bars in {out['seconds']} s "
                  f"({out['bars_per_second']} bars/s), {out['models']}")
    table = Table("run", "trades", "win rate", "PF", "expectancy", "net $", "max DD %", "Sharpe", "Sortino", "Calmar")
    rows = [("strategy", out)] + [(k, v) for k, v in out.get("baselines", {}).items()]
    for name, m in rows:
        table.add_row(name, str(m["trades"]), f"{m['win_rate']:.1%}", str(m["profit_factor"]), str(m["expectancy"]),
                      f"{m['net_profit']:+.2f}", str(m["max_drawdown_pct"]), str(m["sharpe"]), str(m["sortino"]),
                      str(m["calmar"]))
    console.print(table)
    console.print(f"exit reasons: {out['exit_reasons']}")
    console.print(f"gates that blocked most: {dict(list(out['gate_blocks'].items())[:6])}")
    best_base = max((m["net_profit"] for m in out.get("baselines", {}).values()), default=None)
    if best_base is not None and out["net_profit"] <= best_base:
        console.print("[yellow]The strategy does not beat its best baseline on this data.[/yellow]")


def _write_trades(path: Path, result: Any) -> None:
    info = {o.ticket: o for o in result.opened}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ticket", "side", "volume", "open_time", "open_price", "close_time", "close_price", "sl", "tp",
                    "profit", "exit_reason", "session", "regime", "setup"])
        for t in result.trades:
            o = info.get(t.ticket)
            extra = o.extra if o else {}
            w.writerow([t.ticket, t.side, t.volume, t.open_time.isoformat(), t.open_price, t.close_time.isoformat(),
                        t.close_price, o.sl if o else t.sl, o.tp if o else t.tp, round(t.profit, 2), t.reason,
                        extra.get("session", ""), extra.get("regime", ""), extra.get("setup", "")])
