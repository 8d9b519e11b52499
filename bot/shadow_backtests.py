"""`/backtest [days] challenger v007 · challenger params NAME`: the strategy and its challengers on the
bot's own recent bars, by the code path of `main.py backtest --challenger` and of the challengers
forward (`trading.shadow_compare.compare_on_history`), in a worker thread, never on the trading loop.

The requests are checked on the loop before anything starts, by /shadow add's rules
(`ShadowService.resolve`): an unknown version, a parameter set that fails validation, a challenger
identical to the strategy, more challengers than allowed: one line each. It takes the plain
backtest's bars and settings (`bot.backtests.BotBacktester.window`) and its one-at-a-time rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from handlers.services import BacktestRefused, Progress
from trading.async_run import run_for_result
from trading.shadow import Analyzer, ChallengerError
from trading.shadow_compare import Challenger, compare_on_history

if TYPE_CHECKING:
    from bot.backtests import BotBacktester

BAR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ComparisonReport:
    """A finished `/backtest ... challenger ...`: the span and `compare_on_history`'s figures."""

    requested_days: int
    days: float  # calendar days the bars covered
    bars: int  # bars decided (after the warm-up)
    first: datetime
    last: datetime
    seconds: float
    models: str  # the strategy's model: "model v001" or "no models: SMC-only"
    balance: float  # every account's start
    figures: dict[str, Any]  # "strategy", "challengers" (each with "vs_strategy"), "start"


class Challengers(Protocol):
    """What a comparison needs of the shadow service (bot.shadow.ShadowService)."""

    @property
    def max_challengers(self) -> int: ...

    def resolve(self, model: str | None, params: str | None) -> Challenger: ...

    def history_analyzer(self, version: str, with_h1_bias: bool) -> Analyzer: ...

    def live_model_version(self) -> str | None: ...


class ChallengerBacktests:
    def __init__(self, service: Challengers, tester: BotBacktester | None, history: int = 1500) -> None:
        self.service = service
        self.tester = tester  # its worker thread and its one-at-a-time rule
        self.history = history  # bars each analysis reads (ANALYSIS_HISTORY_BARS)

    def start(
        self, days: int, requests: Sequence[tuple[str | None, str | None]], progress: Progress
    ) -> asyncio.Task[ComparisonReport]:
        """The running comparison; ValueError (one line for the user) and nothing started when a request
        or the moment is not right."""
        tester = self.tester
        if tester is None:
            raise BacktestRefused("backtests are not available in this run")
        if tester.running:
            raise BacktestRefused("a backtest is already running: its report comes in this chat")
        most = self.service.max_challengers
        if not requests or len(requests) > most:
            raise ChallengerError(f"a backtest compares 1 to {most} challengers with the strategy")
        challengers = [self.service.resolve(model, params) for model, params in requests]
        work = partial(self._work, tester, days, challengers, progress)
        return asyncio.ensure_future(tester.run_aside(work))

    def _work(
        self, tester: BotBacktester, days: int, challengers: list[Challenger], progress: Progress
    ) -> ComparisonReport:
        config, bars, whole = tester.window(days)
        live_version = self.service.live_model_version()
        t0 = time.perf_counter()
        figures = run_for_result(
            compare_on_history(
                bars,
                challengers,
                self.service.history_analyzer,
                balance=config.balance,
                commission=config.commission_per_lot,
                ticks_per_bar=config.ticks_per_bar,
                warmup=config.warmup_bars,
                history=self.history,
                base=config.params,
                limits=config.limits,
                progress=progress,
                live_version=live_version,
            )
        )
        first, last = bars["time"][config.warmup_bars], bars["time"][-1]
        return ComparisonReport(
            requested_days=days,
            days=days if whole else (last + BAR - first).total_seconds() / 86400,
            bars=bars.height - config.warmup_bars,
            first=first,
            last=last,
            seconds=time.perf_counter() - t0,
            models=f"model {live_version}" if live_version else "no models: SMC-only",
            balance=config.balance,
            figures=figures,
        )
