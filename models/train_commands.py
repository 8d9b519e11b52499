"""The `train` and `evaluate` commands: read the bars, run, print the report (rich) and the JSON.

`models.train_cli` registers the arguments and imports this module only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl

from models.edge import clean_json
from models.ev import EVGate
from models.evaluation import evaluate_models
from models.registry import ModelRegistry, resolve_version
from models.training import TrainReport, train_models


def _write_json(target: str | None, payload: dict[str, Any]) -> None:
    if target is None:
        return
    text = json.dumps(clean_json(payload), allow_nan=False)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(target).write_text(text + "\n")


def _load(args: argparse.Namespace, console: Any = None) -> pl.DataFrame:
    from trading.bars import load_bars

    spread = getattr(args, "spread", None)
    bars = load_bars(args.data, server_tz=args.server_tz, spread=spread)
    if spread is not None and console is not None:
        console.print(
            f"[yellow]spread ASSUMED {spread} points on every bar (the file has no spread column)[/yellow]"
        )
    return bars


def _console(args: argparse.Namespace) -> Any:
    from rich.console import Console

    # with --json - the report goes to stderr so stdout carries exactly one JSON object
    return Console(stderr=args.json == "-")


def _cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(args)
    bars = _load(args, console)
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=100)

        def progress(stage: str, percent: float) -> None:
            bar.update(task, description=stage, completed=percent)

        result = train_models(
            bars,
            args.models_dir,
            n_folds=args.folds,
            test_size=args.test_size,
            valid_size=args.test_size,
            activate=not args.no_activate,
            force=args.activate,
            progress=progress,
            commission_per_lot=args.commission,
        )
    _print_train(console, result)
    payload = result.to_json_dict()
    _write_json(args.json, payload)
    return 0


def _print_train(console: Any, r: TrainReport) -> None:
    from rich import box
    from rich.table import Table

    s = r.signal
    # narrow headers and collapsed padding: the table fits an 80-column terminal or a pipe
    table = Table(
        title=f"walk-forward, {len(s['folds'])} folds (test blocks of setups)",
        show_lines=False,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0),
    )
    # per fold: AUC and the R per trade of the EV-gated setups against all setups (log losses pooled below)
    for col in ("fold", "from", "to", "setups", "AUC", "won", "EV n", "EV R", "all R"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in s["folds"]:
        m, t = f["metrics"], f["trading"]
        table.add_row(
            str(f["fold"] + 1),
            _short(f["test_from"]),
            _short(f["test_to"]),
            str(f["test_rows"]),
            _f(m["auc"]),
            _pct(t["all_setups"]["win_rate"]),
            str(t["ev_gate"]["n"]),
            _r(t["ev_gate"]["mean_r"]),
            _r(t["all_setups"]["mean_r"]),
        )
    console.print(table)
    console.print(f"  pooled test setups ({s['n']}, base win rate {_pct(s['base_win_rate'])}):")
    for name, m in (("model", s), *s["baselines"].items()):
        console.print(
            f"  {name:<10} AUC {_f(m['auc'])}  acc {_f(m['accuracy'])}  "
            f"log loss {_f(m['log_loss'])}  Brier {_f(m['brier'])}"
        )
    t = s["trading"]
    console.print(
        f"  EV gate on the test blocks: {t['ev_gate']['n']} of {t['all_setups']['n']} setups, "
        f"{_r(t['ev_gate']['mean_r'])} R each (every setup: {_r(t['all_setups']['mean_r'])} R)"
    )
    console.print(f"  EV gate of the stored model: {EVGate.from_dict(s['ev_gate']).describe()}")
    fm, fb = s["fold_mean"], s["fold_mean_baselines"]
    console.print(
        f"  mean of folds: AUC {_f(fm['auc'])} (base rate {_f(fb['base_rate']['auc'])}), "
        f"log loss {_f(fm['log_loss'])} (base rate {_f(fb['base_rate']['log_loss'])})"
    )
    console.print(
        f"  calibration {s['calibration']}: ECE {_f(s['ece'])} on the test blocks "
        f"(validation slice raw {_f(s['ece_valid_raw'])} -> {_f(s['ece_valid_calibrated'])})"
    )
    checks = s.get("edge_checks", [])
    console.print("  activation checks (out of sample):")
    for check in checks:  # every check, passed or failed, with its figures; wrapped between words, indented
        text = f"{'pass' if check['passed'] else 'FAIL'} {check['name']}: {check['detail']}"
        console.print(
            textwrap.fill(text, width=78, initial_indent="    ", subsequent_indent="         "),
            highlight=False,
        )
    failed = [c["name"] for c in checks if not c["passed"]]
    verdict = (
        f"no demonstrated edge (failed: {', '.join(failed)})"
        if failed
        else "edge demonstrated out of sample"
        if checks
        else s["verdict"]
    )
    console.print(
        textwrap.fill(f"verdict: {verdict}", width=78, initial_indent="  ", subsequent_indent="    "),
        highlight=False,
    )
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r.regime["state_shares"].items())
    console.print(f"  regime: {shares}; latest bar {r.regime['latest']}")
    console.print(
        f"  version {r.version}: {'ACTIVE' if r.activated else 'not active'} ({r.activation_reason})"
    )
    console.print(f"  {r.seconds:.1f} s")


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _r(v: Any) -> str:
    return "n/a" if v is None else f"{v:+.3f}"


def _short(iso: str) -> str:
    return iso[5:16].replace("T", " ")  # "2025-10-23T09:15Z" -> "10-23 09:15"


def _f(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    console = _console(args)
    version = getattr(args, "version", None)
    if version:  # a wrong version is refused before the bars are read
        version = resolve_version(ModelRegistry(args.models_dir), version)
    result = evaluate_models(_load(args, console), args.models_dir, version=version)
    console.print(
        f"version {result['version']} ({result['status'] or 'status unknown'}) on {result['n']} bars "
        f"{result['from']} .. {result['to']}"
    )
    for name, m in (("model", result), *result["baselines"].items()):
        console.print(
            f"  {name:<13} AUC {_f(m['auc'])}  acc {_f(m['accuracy'])}  "
            f"log loss {_f(m['log_loss'])}  Brier {_f(m['brier'])}"
        )
    t = result["trading"]
    console.print(
        f"  {result['n']} setups, base win rate {_pct(result['base_win_rate'])}; EV gate takes "
        f"{t['ev_gate']['n']} at {_r(t['ev_gate']['mean_r'])} R each (every setup "
        f"{_r(t['all_setups']['mean_r'])} R)"
    )
    console.print(f"  ECE {_f(result['ece'])}; {result['verdict']}")
    if result["rows_inside_training_range"]:
        console.print(
            f"  warning: {result['rows_inside_training_range']} rows lie inside the training range "
            "(in-sample, optimistic)"
        )
    _write_json(args.json, result)
    return 0
