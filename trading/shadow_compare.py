"""The strategy and its challengers on history, with the machinery the bot runs forward: the live engine
through `MarketLoop`, one paper engine per challenger stepped after live's step and bar
(`trading.shadow_replay`), the figures of `trading.shadow_stats`. `main.py backtest --challenger`
(research/shadow_backtest.py) and `/backtest ... challenger v007` (bot/shadow_backtests.py) both call
`compare_on_history`, so the numbers a trader sees backward and in `/shadow` come from one code path.

Models stay outside `trading/`: the caller gives `analyzer_for(version, with_h1_bias)`, the bar analyzer of
a model version (LIVE_MODEL: the strategy's own). A bar is analysed once a model version for every
strategy reading it (`BarMemo`), the H1 bias added for those whose gate wants it (`H1Bias`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from trading.engine import TradingEngine
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits
from trading.shadow import LIVE_MODEL, Analyzer, BarMemo, ChallengerSpec, H1Bias, ShadowBook, params_to_dict
from trading.shadow_replay import replay_with_shadow
from trading.shadow_stats import Outcome, StrategyStats, paired_by_day, strategy_stats, trading_days
from trading.simulation import SimClock
from trading.timezones import wib_date

AnalyzerFor = Callable[[str, bool], Analyzer]  # (model version or LIVE_MODEL, with the H1 bias) -> analyzer


@dataclass(frozen=True, slots=True)
class Challenger:
    model: str  # a stored version ("v007"), or LIVE_MODEL
    params_name: str  # "" = the strategy's parameters
    params: StrategyParams


async def compare_on_history(
    bars: pl.DataFrame,
    challengers: list[Challenger],
    analyzer_for: AnalyzerFor,
    *,
    balance: float,
    commission: float,
    ticks_per_bar: int,
    warmup: int,
    history: int,
    base: StrategyParams | None = None,
    limits: RiskLimits | None = None,
    progress: Callable[[int, int], None] | None = None,
    live_version: str | None = None,
) -> dict[str, Any]:
    """The strategy and each challenger over `bars`; the figures as one JSON-able dict: "strategy" and
    "challengers" (each with "vs_strategy", paired by WIB day), each with its closed trades as "curve"
    ([close time ISO, profit] pairs, for an equity chart)."""
    base = base or StrategyParams()
    memos: dict[str, BarMemo] = {}
    h1 = H1Bias(history)

    def analyzer(version: str, params: StrategyParams) -> Analyzer:
        """One analysis a bar per model version (a challenger on live's reads live's); the H1 bias on top."""
        key = LIVE_MODEL if version in (LIVE_MODEL, live_version) else version
        if key not in memos:
            memos[key] = BarMemo(analyzer_for(key, False))
        return h1.over(memos[key], True) if params.gate_enabled("h1_bias") else memos[key]

    live = analyzer(LIVE_MODEL, base)
    holder: dict[str, TradingEngine] = {}
    with tempfile.TemporaryDirectory() as folder:

        def build(engine: TradingEngine, clock: SimClock) -> ShadowBook:
            holder["engine"] = engine
            return ShadowBook(
                Path(folder),
                lambda spec: analyzer(spec.model_version, spec.strategy_params()),
                clock,
                max_challengers=max(len(challengers), 1),
            )

        async def add(book: ShadowBook) -> None:
            engine = holder["engine"]
            for n, c in enumerate(challengers, start=1):
                limits_now = asdict(engine.limits)
                spec = ChallengerSpec(
                    n,
                    c.model,
                    c.params_name,
                    params_to_dict(c.params),
                    limits_now,
                    balance,
                    engine.clock(),
                    "backtest",
                )
                await book.add(spec)

        result = await replay_with_shadow(
            bars,
            live,
            build,
            balance=balance,
            warmup=warmup,
            ticks_per_bar=ticks_per_bar,
            params=base,
            limits=limits,
            commission_per_lot=commission,
            history=history,
            before_start=add,
            progress=progress,
        )
        for runner in result.book.runners.values():  # open at the end of the data: closed at the last price
            for pos in list(runner.engine.positions.values()):
                await runner.engine._close(pos, "end_of_data", "the data ended", by="backtest")
        lives = result.live_outcomes()
        first, last = wib_date(bars["time"][warmup]), wib_date(result.clock.now)
        out: dict[str, Any] = {
            "strategy": {**figures(strategy_stats(lives, balance)), "curve": curve(lives)},
            "challengers": [],
            "start": _start(bars, warmup).isoformat(),  # the first decided bar: where the curves begin
        }
        for runner in result.book.runners.values():
            ours = runner.outcomes()
            diff = paired_by_day(ours, lives, trading_days(first, last, [*ours, *lives]))
            out["challengers"].append(
                {
                    "label": runner.spec.label,
                    **figures(strategy_stats(ours, balance)),
                    "vs_strategy": {
                        "days": diff.days,
                        "mean_per_day": round(diff.mean_per_day, 2),
                        "ci95": [round(x, 2) for x in diff.ci] if diff.ci else None,
                        "p_not_better": diff.p_better,
                        "strength": diff.strength,
                    },
                    "errors": runner.errors,
                    "curve": curve(ours),
                }
            )
        return out


def _start(bars: pl.DataFrame, warmup: int) -> datetime:
    moment: datetime = bars["time"][warmup]
    return moment


def curve(outcomes: list[Outcome]) -> list[list[Any]]:
    ordered = sorted(outcomes, key=lambda o: o.close_time)
    return [[o.close_time.isoformat(), round(o.profit, 2)] for o in ordered]


def figures(s: StrategyStats) -> dict[str, Any]:
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
