"""`main.py backtest --challenger SPEC`: challengers beside the strategy on history, with the machinery
the bot runs forward (`trading.shadow_replay`: the live analyzer bar by bar, one paper engine per
challenger stepped after live's step and bar, `trading.shadow_stats` for the figures), so the
numbers a trader sees backward and in `/shadow` come from one code path.

SPEC is `vNNN` (a stored version of --models-dir, rejected ones too), `params:FILE.json` (StrategyParams
fields, or an optimize proposal with a "proposed" object), or both joined by `+`.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from trading.analyzer import MarketAnalyzer
from trading.parameters import StrategyParams
from trading.shadow import (
    LIVE_MODEL,
    BarMemo,
    ChallengerError,
    ChallengerSpec,
    ShadowBook,
    load_param_set,
    params_to_dict,
)
from trading.shadow_replay import replay_with_shadow
from trading.shadow_stats import paired_by_day, strategy_stats, trading_days
from trading.timezones import wib_date

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


def _analyzer(regime: Any, signal: Any, params: StrategyParams) -> MarketAnalyzer:
    return MarketAnalyzer(regime, signal, history=HISTORY, with_h1_bias=params.gate_enabled("h1_bias"))


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
    """The strategy and each challenger over `bars`; the figures as one JSON-able dict."""
    from models.live import SlotRegime, SlotSignal
    from models.registry import ModelSlot, load_version

    base = base or StrategyParams()
    parsed = [parse_challenger(s, base) for s in specs]
    if any(m != LIVE_MODEL for m, _, _ in parsed) and registry is None:
        raise ChallengerError("a challenger on a model version needs --models-dir")

    def slot_analyzer(bundle: Any, params: StrategyParams) -> BarMemo:
        slot = ModelSlot(bundle)
        return BarMemo(_analyzer(SlotRegime(slot), SlotSignal(slot), params))

    live = slot_analyzer(live_bundle, base)
    memos: dict[tuple[str, bool], BarMemo] = {}
    live_version = getattr(live_bundle, "version", None)

    def make_analyzer(spec: ChallengerSpec) -> BarMemo:
        params = spec.strategy_params()
        version = live_version if spec.model_version == LIVE_MODEL else spec.model_version
        if version == live_version and params.gate_enabled("h1_bias") == base.gate_enabled("h1_bias"):
            return live  # the same inputs: the bar is analysed once
        key = (version or "none", params.gate_enabled("h1_bias"))
        if key not in memos:
            bundle = load_version(registry, version) if version else None
            memos[key] = slot_analyzer(bundle, params)
        return memos[key]

    holder: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:

        def build(engine: Any, clock: Any) -> ShadowBook:
            holder["engine"] = engine
            return ShadowBook(Path(folder), make_analyzer, clock, max_challengers=max(len(parsed), 1))

        async def add(book: ShadowBook) -> None:
            engine = holder["engine"]
            for n, (model, label, params) in enumerate(parsed, start=1):
                await book.add(
                    ChallengerSpec(
                        n,
                        model,
                        label,
                        params_to_dict(params),
                        asdict(engine.limits),
                        balance,
                        engine.clock(),
                        "backtest",
                    )
                )

        result = await replay_with_shadow(
            bars,
            live,
            build,
            balance=balance,
            warmup=warmup,
            ticks_per_bar=ticks_per_bar,
            params=base,
            commission_per_lot=commission,
            history=HISTORY,
            before_start=add,
        )
        for runner in result.book.runners.values():  # open at the end of the data: closed at the last price
            for pos in list(runner.engine.positions.values()):
                await runner.engine._close(pos, "end_of_data", "the data ended", by="backtest")
        lives = result.live_outcomes()
        first, last = wib_date(bars["time"][warmup]), wib_date(result.clock.now)
        out: dict[str, Any] = {"strategy": _figures(strategy_stats(lives, balance)), "challengers": []}
        for runner in result.book.runners.values():
            ours = runner.outcomes()
            diff = paired_by_day(ours, lives, trading_days(first, last, [*ours, *lives]))
            out["challengers"].append(
                {
                    "spec": specs[runner.spec.number - 1],
                    "label": runner.spec.label,
                    **_figures(strategy_stats(ours, balance)),
                    "vs_strategy": {
                        "days": diff.days,
                        "mean_per_day": round(diff.mean_per_day, 2),
                        "ci95": [round(x, 2) for x in diff.ci] if diff.ci else None,
                        "p_not_better": diff.p_better,
                        "strength": diff.strength,
                    },
                    "errors": runner.errors,
                }
            )
        return out


def _figures(s: Any) -> dict[str, Any]:
    return {
        "trades": s.trades,
        "win_rate": s.win_rate,
        "profit_factor": s.profit_factor,
        "net": s.net,
        "max_drawdown": s.max_drawdown,
        "max_drawdown_pct": round(s.max_drawdown_pct, 2),
        "expectancy_r": s.expectancy_r,
        "expectancy_r_ci95": list(s.expectancy_r_ci) if s.expectancy_r_ci else None,
    }


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
    import asyncio

    registry = bundle = None
    if args.models_dir:
        from models.registry import ModelRegistry, load_version

        registry = ModelRegistry(Path(args.models_dir))
        bundle = load_version(registry, args.version) if args.version else registry.load_active()
    try:
        out = asyncio.run(
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
