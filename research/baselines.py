"""The baselines every research report sets beside the strategy, on the strategy's own path.

A baseline is only a fair comparison when it sees what the strategy saw: the same bars, the same
intrabar path (`--ticks`, `--detail` or the generated one), the same paper broker's fills, spread,
slippage and commission, and the same account rules (risk limits, margin, carried risk counters).
So every baseline here runs through the same `run_backtest` / `PaperBroker` with the strategy's
`BacktestConfig` and path factory; only what makes it a baseline differs:

- SMC-only: the ML gates off (the fold model's regime is still used where there is one);
- random entries: a coin picks each setup's side (same stops, targets, exits), ML gates off;
- buy-and-hold: the risk band's maximum lot bought at the first traded tick through the paper
  broker (ask, slippage, commission, margin) and sold at the last tick of the data.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from trading.analyzer import AnalysisFrame, RegimeSource
from trading.async_run import run_for_result
from trading.backtest import (
    BacktestConfig,
    BacktestResult,
    PathFactory,
    Progress,
    RandomSide,
    compute_metrics,
    replay_account,
    run_backtest,
)
from trading.domain import ClosedTrade, Side
from trading.risk.modes import RiskState

ML_GATES = frozenset({"ml_confidence", "ml_agreement"})
RANDOM_SEED = 7
BASELINES = ("smc_only", "random", "buy_and_hold")


def smc_only_config(config: BacktestConfig) -> BacktestConfig:
    """The strategy's config with the ML gates off; everything else (costs, limits, path) unchanged."""
    return replace(
        config, params=replace(config.params, disabled_gates=config.params.disabled_gates | ML_GATES)
    )


def run_smc_only(
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    regime: RegimeSource | None = None,
    frame: AnalysisFrame | None = None,
    path: PathFactory | None = None,
    risk_state: RiskState | None = None,
    progress: Progress | None = None,
    label: str = "SMC-only",
) -> BacktestResult:
    return run_backtest(
        bars,
        smc_only_config(config),
        regime=regime,
        frame=frame,
        path=path,
        risk_state=risk_state,
        progress=progress,
        label=label,
    )


def run_random(
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    regime: RegimeSource | None = None,
    frame: AnalysisFrame | None = None,
    path: PathFactory | None = None,
    risk_state: RiskState | None = None,
    progress: Progress | None = None,
    label: str = "random",
    seed: int = RANDOM_SEED,
) -> BacktestResult:
    return run_backtest(
        bars,
        smc_only_config(config),
        regime=regime,
        frame=frame,
        path=path,
        risk_state=risk_state,
        progress=progress,
        analyzer_wrapper=lambda a: RandomSide(a, seed=seed),
        label=label,
    )


# ------------------------------------------------------------------------------------ buy-and-hold


async def _hold(
    bars: pl.DataFrame, config: BacktestConfig, path: PathFactory | None, label: str
) -> BacktestResult:
    warmup, feed, broker = await replay_account(bars, config, path)
    first = feed.next_tick_now()
    assert first is not None
    broker.set_tick(first)
    order = await broker.open_market(Side.BUY, config.limits.max_lot, 0.0, 0.0, "buy and hold")
    times: list = bars["time"].to_list()
    bar_len = timedelta(minutes=15)
    eq_times, equity = [], []
    last = first
    for bar in range(warmup, bars.height):
        _, bid, _ = feed.bar_ticks(bar)
        start = feed.bar_start(bar)
        # the bar's lowest bid (where a margin stop-out would happen) and its last tick
        for k in sorted({int(np.argmin(bid)), bid.size - 1}):
            if start + k >= feed.delivered and broker.has_positions():
                feed.skip_to(start + k)
                tick = feed.next_tick_now()
                if tick is not None:
                    broker.set_tick(tick)
                    last = tick
        eq_times.append(times[bar] + bar_len)
        equity.append(broker.equity())
    positions = broker.positions_now()
    close_price = last.bid
    if positions:
        result = await broker.close_position(order.ticket, comment="end of data")
        close_price = result.price
        equity[-1] = broker.equity()
    trade = ClosedTrade(
        order.ticket,
        "XAUUSD",
        Side.BUY,
        order.volume,
        order.price,
        close_price,
        order.time,
        last.time,
        round(broker.balance - config.balance, 2),
        "end_of_data" if positions else "stop_out",
    )
    return BacktestResult(
        bars=bars.height - warmup,
        seconds=0.0,
        start_balance=config.balance,
        trades=[trade],
        opened=[],
        equity_times=eq_times,
        equity=np.asarray(equity, dtype=float),
        gate_blocks=Counter(),
        decisions=0,
        label=label,
        intrabar_mode=feed.mode,
        detail_share=feed.path.detail_share(),
    )


def run_buy_and_hold(
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    path: PathFactory | None = None,
    label: str = "buy-and-hold",
) -> BacktestResult:
    """Buy the risk band's maximum lot at the first traded tick and sell at the last, through the paper
    broker on the strategy's path: the same ask, slippage, commission and margin as any trade."""
    t0 = time.perf_counter()
    result = run_for_result(_hold(bars, config, path, label))
    result.seconds = time.perf_counter() - t0
    return result


def buy_and_hold(
    bars: pl.DataFrame, config: BacktestConfig, *, path: PathFactory | None = None
) -> dict[str, Any]:
    r = run_buy_and_hold(bars, config, path=path)
    return compute_metrics(r.trades, r.opened, r.equity_times, r.equity, r.start_balance)


def buy_and_hold_chained(
    windows: Sequence[pl.DataFrame], config: BacktestConfig, *, path: PathFactory | None = None
) -> dict[str, Any]:
    """Buy-and-hold over each window in turn, each starting with the previous one's final balance."""
    balance = config.balance
    trades: list[ClosedTrade] = []
    times: list = []
    equity: list[float] = []
    for k, w in enumerate(windows):
        r = run_buy_and_hold(w, replace(config, balance=balance), path=path)
        trades += [replace(t, ticket=k) for t in r.trades]
        times += r.equity_times
        equity += r.equity.tolist()
        balance = float(r.equity[-1])
    return compute_metrics(trades, [], times, np.asarray(equity, dtype=float), config.balance)


# ------------------------------------------------------------------------------------ all of them


def run_baselines(
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    regime: RegimeSource | None = None,
    path: PathFactory | None = None,
    progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, BacktestResult]:
    """SMC-only, random entries and buy-and-hold over `bars` on the strategy's path and config."""
    track = progress or (lambda label: None)
    return {
        "smc_only": run_smc_only(bars, config, regime=regime, path=path, progress=track("SMC-only")),
        "random": run_random(bars, config, regime=regime, path=path, progress=track("random")),
        "buy_and_hold": run_buy_and_hold(bars, config, path=path),
    }


def baseline_metrics(runs: dict[str, BacktestResult]) -> dict[str, dict[str, Any]]:
    """The report's baseline figures, each with the intrabar mode it was walked on."""
    return {
        name: {**runs[name].metrics(), "intrabar_mode": runs[name].intrabar_mode}
        for name in ("buy_and_hold", "smc_only", "random")
        if name in runs
    }
