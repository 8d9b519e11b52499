"""`/backtest [days]` behind the handlers' `Backtester` protocol: the engine replayed over the bot's
own recent bars, in a worker thread, never on the trading loop.

The replay (trading.backtest.run_backtest, the research CLI's engine) runs its own event loop inside
one dedicated worker thread; at most one backtest runs at a time. Polars, numpy and XGBoost release
the GIL for their heavy parts, so the live loop keeps its timing (a process pool would also have to
ship the models and the bars across).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import polars as pl

from handlers.services import BacktestRefused, BacktestReport, Progress
from trading.backtest import BacktestConfig, HaltEvent, run_backtest
from trading.run_checks import run_checks

T = TypeVar("T")
BARS_PER_DAY = 96  # M15
MIN_TEST_BARS = BARS_PER_DAY  # at least one day after the warm-up
BAR = timedelta(minutes=15)


def calendar_window(times: pl.Series, days: int, warmup: int) -> int:
    """The index of the first bar to keep so that the test covers the last `days` calendar days
    (the market is shut at weekends, so a calendar day holds fewer than 96 bars on average) and
    `warmup` bars precede it; 0 when the bot's bars do not reach that far back."""
    if times.len() == 0:
        return 0
    start: datetime = times[-1] + BAR - timedelta(days=days)
    first_test = int((times < start).sum())
    return max(0, first_test - warmup)


class BotBacktester:
    def __init__(
        self,
        fetch_bars: Callable[[int], pl.DataFrame],
        config: Callable[[], BacktestConfig],
        sources: Callable[[], tuple[Any, Any, str]] = lambda: (None, None, "no models: SMC-only"),
        chart: Callable[..., bytes] | None = None,
        distribution: Callable[..., bytes] | None = None,
    ) -> None:
        self.fetch_bars = fetch_bars  # n -> the newest n closed bars the bot has (called in the worker)
        self.config = config  # the live strategy parameters and limits, read when a run starts
        self.sources = sources  # () -> (regime, signal, description) of the active models
        self.chart = chart  # charts.equity_chart: the equity, balance, drawdown and halts
        self.distribution = distribution  # charts.pnl_distribution_chart: P/L per trade
        self.running = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest")

    def bars_needed(self, days: int) -> int:
        return days * BARS_PER_DAY + self.config().warmup_bars

    async def run(self, days: int, progress: Progress) -> BacktestReport:
        return await self.run_aside(lambda: self._work(days, progress))

    async def run_aside(self, work: Callable[[], T]) -> T:
        """`work` in the backtest worker thread, one backtest at a time (also bot.shadow_backtests')."""
        if self.running:
            raise BacktestRefused("a backtest is already running: wait for its report")
        self.running = True
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self.running = False

    def window(self, days: int) -> tuple[BacktestConfig, pl.DataFrame, bool]:
        """The settings, the bars covering the last `days` calendar days after the warm-up, and whether
        the bot's bars reach back that far; BacktestRefused when they are too few. In the worker."""
        config = self.config()
        bars = self.fetch_bars(self.bars_needed(days))  # at most 96 bars a calendar day: enough
        skip = calendar_window(bars["time"], days, config.warmup_bars)
        whole = skip > 0  # bars reach back past the window: all of it is covered (weekends included)
        bars = bars.slice(skip)
        if bars.height < config.warmup_bars + MIN_TEST_BARS:
            need = config.warmup_bars + MIN_TEST_BARS
            raise BacktestRefused(
                f"the bot has {bars.height} closed M15 bars; a backtest needs at least {need} "
                f"({config.warmup_bars} to warm up + 1 day)"
            )
        return config, bars, whole

    def _work(self, days: int, progress: Progress) -> BacktestReport:
        config, bars, whole = self.window(days)
        regime, signal, models = self.sources()
        t0 = time.perf_counter()
        result = run_backtest(bars, config, regime=regime, signal=signal, progress=progress)
        first = bars["time"][config.warmup_bars]
        last = bars["time"][-1]
        calendar = days if whole else (last + BAR - first).total_seconds() / 86400
        png = dist = None
        if self.chart is not None and len(result.equity_times) >= 2:
            png = self.chart(
                result.equity_times,
                result.equity,
                result.balance if result.balance.size else None,
                title=f"Backtest equity · {result.bars:,} bars",
                start=(first, result.start_balance),
                halts=halt_marks(result.halts),
            )
        if self.distribution is not None and result.trades:
            dist = self.distribution([t.profit for t in result.trades], title="Backtest P/L per trade")
        return BacktestReport(
            requested_days=days,
            days=calendar,
            bars=result.bars,
            first=first,
            last=last,
            seconds=time.perf_counter() - t0,
            metrics=result.metrics(),
            models=models,
            equity_png=png,
            distribution_png=dist,
            trading_days=result.bars / BARS_PER_DAY,
            checks=run_checks([result], config.params, config.limits).to_json(),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def halt_marks(halts: list[HaltEvent]) -> list[tuple[datetime, datetime | None, str]]:
    """Loss-limit halts as the phone's equity chart marks them: (start, end, short label)."""
    return [(h.start, h.end, f"halted: {h.limit_name}") for h in halts]
