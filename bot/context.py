"""What the controller (Telegram handlers, console transport, scheduled jobs) can reach.

The app builds one `BotContext` at start-up; aiogram handlers receive it by dependency injection
(`dp["ctx"] = ctx`, a handler parameter named `ctx`). It implements `handlers.services.Services`,
the protocol the handlers are written against, so handlers never import `bot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.store import Journal
    from trading.analyzer import MarketAnalyzer
    from trading.engine import TradingEngine


@dataclass(slots=True)
class BotContext:
    engine: TradingEngine
    journal: Journal
    settings: Settings
    analyzer: MarketAnalyzer
    started: datetime
    trainer: Any = None  # models.autotrainer.AutoTrainer when models are enabled
    registry: Any = None  # models.registry.ModelRegistry
    extras: dict[str, Any] = field(default_factory=dict)
