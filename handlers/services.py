"""What a handler may reach, as protocols: handlers depend on these, `bot/` implements them.

The dispatcher hands every handler one `Services` object as the workflow-data key `ctx`
(`dp["ctx"] = ...`, a handler parameter named `ctx`); `bot.context.BotContext` is the implementation.
So the import arrow runs bot -> handlers only: a handler never imports `bot`, and never `research`
(the backtest runs behind `Backtester`, which the bot injects). What a handler only reads is a
read-only property here, so the implementation may hold a richer type (the journal, not `JournalView`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from handlers.memory import ApprovalMessages, PagedLists
from trading.analyzer import AnalysisFrame
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

    async def performance(self, since: datetime | None) -> Mapping[str, Sequence[Any]]: ...

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


class JournalWrites(Protocol):
    """The journal's write state (bot.store.health.JournalHealth), for /health."""

    @property
    def failing_since(self) -> datetime | None: ...
    @property
    def error(self) -> str: ...
    @property
    def held(self) -> tuple[str, ...]: ...
    @property
    def entries_blocked(self) -> str: ...


class JournalView(Protocol):
    """What handlers read straight from the journal (bot.store.Journal); the rest goes through `Queries`."""

    @property
    def health(self) -> JournalWrites: ...

    async def sqlite_settings(self) -> dict[str, Any]: ...

    async def closed_trades(
        self, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Any]: ...

    async def equity_snapshots(
        self, since: datetime | None = None, limit: int | None = None
    ) -> Sequence[Any]: ...

    async def export_trades_csv(self, path: Any = None, since: datetime | None = None) -> str: ...


class SettingsView(Protocol):
    """The settings handlers read (bot.config.Settings)."""

    @property
    def broker(self) -> str: ...
    @property
    def paper_replay_speed(self) -> float: ...
    @property
    def notify_chat_id(self) -> int | None: ...


class AnalysisSource(Protocol):
    """trading.analyzer.MarketAnalyzer: the last analysed bars, for /chart."""

    @property
    def last_frame(self) -> AnalysisFrame | None: ...


class ModelBundleView(Protocol):
    """models.registry.ModelBundle as /model shows it."""

    @property
    def version(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...


class ModelSlotView(Protocol):
    """models.registry.ModelSlot: what the live loop has loaded, and why not the pointer's version."""

    @property
    def current(self) -> ModelBundleView | None: ...
    @property
    def note(self) -> str: ...


class ModelRegistryView(Protocol):
    """models.registry.ModelRegistry: the stored versions and which one is named active."""

    def active_version(self) -> str | None: ...

    def metadata(self, version: str) -> Mapping[str, Any]: ...


class TrainerConfig(Protocol):
    @property
    def min_bars(self) -> int: ...


class RetrainResult(Protocol):
    """models.autotrainer.RetrainOutcome: how a retrain ended."""

    @property
    def accepted(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def old_version(self) -> str | None: ...
    @property
    def new_metrics(self) -> dict[str, Any]: ...
    @property
    def old_metrics(self) -> dict[str, Any]: ...
    @property
    def seconds(self) -> float: ...
    @property
    def error(self) -> str | None: ...


ProgressCallback = Callable[[str, float], None]  # (stage, percent), called from the trainer's thread


class Trainer(Protocol):
    """models.autotrainer.AutoTrainer: one retrain at a time, its progress reported as it goes."""

    on_progress: ProgressCallback

    @property
    def running(self) -> bool: ...
    @property
    def config(self) -> TrainerConfig: ...

    def start(self, trigger: str, by: str = "scheduler") -> Future[Any]:
        """The run's Future resolves to a `RetrainResult`; RuntimeError when one already runs."""
        ...


class NotifyChat(Protocol):
    """bot.notifier.Notifier as /notify lists it."""

    @property
    def chat_id(self) -> int: ...
    @property
    def over_budget(self) -> Mapping[str, int]: ...

    def switch(self, kind: str) -> str: ...


class NotifySwitches(Protocol):
    """bot.notifier.NotifyControl: the message switches, each change kept in the journal first."""

    @property
    def notifier(self) -> NotifyChat: ...

    async def set(self, kind: str, value: str) -> tuple[str, str]:
        """ValueError (one line) on an unknown kind or value; nothing changes then."""
        ...


class Services(Protocol):
    engine: TradingEngine
    started: datetime
    version: dict[str, str]
    # work a command started and follows in the chat (kept so the task is not collected; tests await it)
    retrain_task: asyncio.Task[None] | None
    backtest_task: asyncio.Task[None] | None

    @property
    def journal(self) -> JournalView: ...
    @property
    def settings(self) -> SettingsView: ...
    @property
    def analyzer(self) -> AnalysisSource: ...
    @property
    def trainer(self) -> Trainer | None:
        """None when automatic retraining is off."""
        ...

    @property
    def registry(self) -> ModelRegistryView | None: ...
    @property
    def queries(self) -> Queries | None: ...
    @property
    def backtester(self) -> Backtester | None: ...
    @property
    def logs(self) -> LogSource | None: ...
    @property
    def bars_available(self) -> Callable[[], int] | None:
        """Closed M15 bars the bot holds now (for /retrain's "not yet")."""
        ...

    @property
    def models(self) -> ModelSlotView | None:
        """What the live loop has loaded; None without a live loop."""
        ...

    @property
    def shadow(self) -> ShadowControl | None:
        """The shadow challengers; None when they are off."""
        ...

    @property
    def notify(self) -> NotifySwitches | None:
        """None until the notifier runs."""
        ...

    @property
    def approval_messages(self) -> ApprovalMessages: ...
    @property
    def paged_lists(self) -> PagedLists: ...
