"""What a handler may reach, as protocols: handlers depend on these, `bot/` implements them.

The dispatcher hands every handler one `Services` object as the workflow-data key `ctx`
(`dp["ctx"] = ...`, a handler parameter named `ctx`); `bot.context.BotContext` is the implementation.
So the import arrow runs bot -> handlers only: a handler never imports `bot` or `research`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from trading.engine import TradingEngine


class Services(Protocol):
    engine: TradingEngine
    journal: Any  # bot.store.Journal
    settings: Any  # bot.config.Settings
    analyzer: Any  # trading.analyzer.MarketAnalyzer (its last_frame for /chart)
    started: datetime
    trainer: Any  # models.autotrainer.AutoTrainer, or None when models are off
    registry: Any  # models.registry.ModelRegistry
    extras: dict[str, Any]
