"""`main.py backtest --challenger SPEC`: challengers beside the strategy on history, with the machinery
the bot runs forward (`trading.shadow_replay`: the live analyzer bar by bar, one paper engine per
challenger stepped after live's step and bar, `trading.shadow_stats` for the figures), so the
numbers a trader sees backward and in `/shadow` come from one code path.

SPEC is `vNNN` (a stored version of --models-dir, rejected ones too), `params:FILE.json` (StrategyParams
fields, or an optimize proposal with a "proposed" object), or both joined by `+`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import polars as pl

from trading.analyzer import MarketAnalyzer
from trading.async_run import run_for_result
from trading.parameters import StrategyParams
from trading.shadow import LIVE_MODEL, ChallengerError, load_param_set
from trading.shadow_compare import Challenger, compare_on_history

HISTORY = 1500  # bars each analysis reads, as the bot's ANALYSIS_HISTORY_BARS default


def parse_challenger(text: str, base: StrategyParams) -> tuple[str, str, StrategyParams]:
    """(model version or LIVE_MODEL, params label, params) of one --challenger SPEC; ChallengerError otherwise."""
    model, label, params = LIVE_MODEL, "", base
    for part in text.split("+"):
        part = part.strip()
        if part.startswith("params:"):
            path = Path(part.removeprefix("params:"))
            params = load_param_set(path.parent, path.stem.removesuffix("-proposal"), base)
            label = path.stem
        elif part.lower().lstrip("v").isdigit():
            model = f"v{int(part.lower().lstrip('v')):03d}"
        else:
            raise ChallengerError(f"--challenger {text!r}: {part!r} is neither vNNN nor params:FILE.json")
    return model, label, params


async def run_challengers(
    bars: pl.DataFrame,
    specs: list[str],
    *,
    balance: float,
    commission: float,
    ticks_per_bar: int,
    warmup: int,
    registry: Any = None,
    live_bundle: Any = None,
    base: StrategyParams | None = None,
) -> dict[str, Any]:
    """The strategy and each challenger over `bars` (`trading.shadow_compare`); the figures as one
    JSON-able dict, each challenger with the SPEC it was given."""
    from models.live import SlotRegime, SlotSignal
    from models.registry import ModelSlot, load_version

    base = base or StrategyParams()
    parsed = [parse_challenger(s, base) for s in specs]
    if any(m != LIVE_MODEL for m, _, _ in parsed) and registry is None:
        raise ChallengerError("a challenger on a model version needs --models-dir")
    live_version = getattr(live_bundle, "version", None)

    def analyzer_for(version: str, with_h1_bias: bool) -> MarketAnalyzer:
        slot = ModelSlot(live_bundle if version == LIVE_MODEL else load_version(registry, version))
        regime: Any = SlotRegime(slot)
        signal: Any = SlotSignal(slot)
        return MarketAnalyzer(regime, signal, history=HISTORY, with_h1_bias=with_h1_bias)

    challengers = [Challenger(model, label, params) for model, label, params in parsed]
    out = await compare_on_history(
        bars,
        challengers,
        analyzer_for,
        balance=balance,
        commission=commission,
        ticks_per_bar=ticks_per_bar,
        warmup=warmup,
        history=HISTORY,
        base=base,
        live_version=live_version,
    )
    for spec, figures in zip(specs, out["challengers"], strict=True):
        figures["spec"] = spec
    return out


def render(console: Any, out: dict[str, Any]) -> None:
    def row(name: str, f: dict[str, Any]) -> str:
        pf = f"{f['profit_factor']:.2f}" if f["profit_factor"] is not None else "—"
        wr = f"{f['win_rate']:.0%}" if f["win_rate"] is not None else "—"
        er = f"{f['expectancy_r']:+.2f} R" if f["expectancy_r"] is not None else "— R"
        return (
            f"{name:<28} {f['trades']:>5} trades  win {wr:>4}  PF {pf:>5}  net {f['net']:>+10.2f}  "
            f"max DD {f['max_drawdown_pct']:.1f}%  {er}"
        )

    console.print(row("strategy", out["strategy"]))
    for c in out["challengers"]:
        console.print(row(c["label"][:28], c))
        v = c["vs_strategy"]
        ci = f" (95% {v['ci95'][0]:+.2f}…{v['ci95'][1]:+.2f})" if v["ci95"] else ""
        console.print(
            f"{'':<28} vs strategy {v['mean_per_day']:+.2f}/day over {v['days']} days{ci}, "
            f"evidence {v['strength']}"
        )


def cmd_shadow_backtest(args: argparse.Namespace, console: Any, config: Any, bars: pl.DataFrame) -> int:

    registry = bundle = None
    if args.models_dir:
        from models.registry import ModelRegistry, load_version

        registry = ModelRegistry(Path(args.models_dir))
        bundle = load_version(registry, args.version) if args.version else registry.load_active()
    try:
        out = run_for_result(
            run_challengers(
                bars,
                list(args.challenger),
                balance=config.balance,
                commission=config.commission_per_lot,
                ticks_per_bar=config.ticks_per_bar,
                warmup=config.warmup_bars,
                registry=registry,
                live_bundle=bundle,
            )
        )
    except ChallengerError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    render(console, out)
    if args.json_out:
        from research.report_text import write_json

        write_json(args.json_out, out)
    return 0
