"""What a handler may reach, as protocols: handlers depend on these, `bot/` implements them.

The dispatcher hands every handler one `Services` object as the workflow-data key `ctx`
(`dp["ctx"] = ...`, a handler parameter named `ctx`); `bot.context.BotContext` is the implementation.
So the import arrow runs bot -> handlers only: a handler never imports `bot`, and never `research`
(the backtest runs behind `Backtester`, which the bot injects).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from trading.engine import TradingEngine

Progress = Callable[[int, int], None]  # (bars done, bars in all), called from a worker thread


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """A finished `/backtest`: the figures (as trading.backtest.compute_metrics names them) and the chart."""

    requested_days: int
    days: float  # calendar days the bars covered (fewer than asked when the bot has fewer bars)
    bars: int
    first: datetime
    last: datetime
    seconds: float
    metrics: dict[str, Any]
    models: str  # "model v12" or "no models: SMC-only"
    equity_png: bytes | None
    distribution_png: bytes | None = None  # P/L per trade, sent with the equity chart as one album
    trading_days: float = 0.0  # the same bars as 24-hour days of M15 bars (96 bars a day)
    checks: dict[str, Any] | None = None  # trading.run_checks.RunChecks.to_json(): SL/TP fills, coherence


class BacktestRefused(ValueError):
    """Not enough bars, or one already running: the message says what to do."""


class Backtester(Protocol):
    running: bool

    async def run(self, days: int, progress: Progress) -> BacktestReport: ...

    def close(self) -> None: ...


class LogSource(Protocol):
    def lines(self, n: int, min_level: int = 0) -> list[str]: ...

    def count_since(self, since_epoch: float, min_level: int = 30) -> int: ...


class Queries(Protocol):
    """Read-only journal queries behind /profit, /stats, /performance, /trades and the period reports
    (bot.store.queries.TradeQueries)."""

    async def closed_since(self, since: datetime | None) -> Sequence[Any]: ...

    async def stats(self, since: datetime | None) -> Any: ...

    async def recent_closed(self, n: int) -> Sequence[Any]: ...

    async def periods(self, unit: str, n: int, today: date) -> Sequence[Any]: ...

    async def day_trades(self, day: date) -> Sequence[Any]: ...

    async def performance(self, since: datetime | None) -> dict[str, Sequence[Any]]: ...

    async def why(self, ticket: int) -> Any: ...

    async def schema_revision(self) -> str: ...


class ShadowControl(Protocol):
    """The shadow challengers (bot.shadow.ShadowService): add and drop raise ValueError with one line
    for the user and change nothing; `view` gives live and each challenger with their figures."""

    async def add(self, *, model: str | None, params: str | None, by: str) -> Any: ...

    async def drop(self, number: int, by: str) -> Any: ...

    async def view(self) -> Any: ...

    def pending_promotions(self) -> Sequence[Any]:
        """Open promotion requests (trading.risk.approvals.Approval)."""
        ...

    def promotion(self, approval_id: str) -> Any:
        """The promotion request with this id, whatever its status (None when unknown)."""
        ...

    async def resolve_promotion(self, approval_id: str, approve: bool, by: str) -> Any:
        """ApprovalError when unknown, answered or expired; approving makes the challenger live."""
        ...

    def backtest(
        self, days: int, requests: Sequence[tuple[str | None, str | None]], progress: Progress
    ) -> Awaitable[Any]:
        """/backtest ... challenger ...: the strategy and each (model, params) request on the bot's recent
        bars, running aside (bot.shadow_backtests.ComparisonReport when done); ValueError with one line
        and nothing started when it cannot run."""
        ...


class Services(Protocol):
    engine: TradingEngine
    journal: Any  # bot.store.Journal
    settings: Any  # bot.config.Settings
    analyzer: Any  # trading.analyzer.MarketAnalyzer (its last_frame for /chart)
    started: datetime
    trainer: Any  # models.autotrainer.AutoTrainer, or None when models are off
    registry: Any  # models.registry.ModelRegistry
    extras: dict[str, Any]
    queries: Queries | None
    backtester: Backtester | None
    logs: LogSource | None
    version: dict[str, str]
    bars_available: Callable[[], int] | None  # closed M15 bars the bot holds now
    models: (
        Any  # models.registry.ModelSlot: what the live loop has loaded (.current, .note); None without one
    )
    shadow: ShadowControl | None  # the shadow challengers; None when they are off
