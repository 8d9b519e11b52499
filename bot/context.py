"""What the controller (Telegram handlers, console transport, scheduled jobs) can reach.

The app builds one `BotContext` at start-up; aiogram handlers receive it by dependency injection
(`dp["ctx"] = ctx`, a handler parameter named `ctx`). It implements `handlers.services.Services`,
the protocol the handlers are written against, so handlers never import `bot`.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING

from bot.store.queries import TradeQueries
from handlers.memory import ApprovalMessages, PagedLists

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.notifier import NotifyControl
    from bot.store import Journal
    from handlers.services import Backtester, LogSource, ShadowControl
    from models.autotrainer import AutoTrainer
    from models.registry import ModelRegistry, ModelSlot
    from trading.analyzer import MarketAnalyzer
    from trading.engine import TradingEngine

VERSIONED_PACKAGES = ("aiogram", "polars", "xgboost", "hmmlearn", "sqlalchemy")


def version_of(module: str, providers: Mapping[str, list[str]] | None = None) -> str:
    """The installed version of the package that provides `module`, whatever its distribution is called
    (`xgboost` comes as `xgboost`, `xgboost-cpu` or `xgboost-gpu`): `3.2.0`, `3.2.0 (xgboost-cpu)`."""
    names = [module, *(d for d in (providers or {}).get(module, []) if d != module)]
    for name in names:
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return found if name == module else f"{found} ({name})"
    return "not installed"


def version_info() -> dict[str, str]:
    """The bot's version and the libraries that decide its behaviour (package metadata, no imports)."""
    providers = metadata.packages_distributions()  # import name -> the distributions that install it
    info = {"xaubot": version_of("xaubot", providers), "python": platform.python_version()}
    info.update({name: version_of(name, providers) for name in VERSIONED_PACKAGES})
    return info


@dataclass(slots=True)
class BotContext:
    engine: TradingEngine
    journal: Journal
    settings: Settings
    analyzer: MarketAnalyzer
    started: datetime
    trainer: AutoTrainer | None = None  # when automatic retraining is on
    registry: ModelRegistry | None = None
    queries: TradeQueries | None = None  # built over `journal` when not given
    backtester: Backtester | None = None  # bot.backtests.BotBacktester; None: /backtest says why
    logs: LogSource | None = None  # bot.logbuffer.LogBuffer
    version: dict[str, str] = field(default_factory=version_info)
    bars_available: Callable[[], int] | None = (
        None  # closed M15 bars the bot holds (for /retrain's "not yet")
    )
    models: ModelSlot | None = None  # the bundle the live loop really uses (None: no live loop)
    shadow: ShadowControl | None = None  # bot.shadow.ShadowService
    notify: NotifyControl | None = None  # /notify's switches; set once the notifier runs
    # what the handlers keep between updates
    approval_messages: ApprovalMessages = field(default_factory=ApprovalMessages)
    paged_lists: PagedLists = field(default_factory=PagedLists)
    retrain_task: asyncio.Task[None] | None = None
    backtest_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        if self.queries is None:
            self.queries = TradeQueries(self.journal)
