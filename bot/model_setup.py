"""The models at start-up: the registry, the live loop's slot with the active version (or SMC-only and
why), the auto-trainer when retraining is on, and /backtest over the bot's own bars with them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from bot.backtests import BotBacktester
    from bot.config import Settings
    from handlers.services import ShadowControl
    from models.autotrainer import AutoTrainer
    from models.registry import ModelRegistry, ModelSlot
    from trading.engine import TradingEngine
    from trading.events import Event


@dataclass(frozen=True, slots=True)
class LiveModels:
    slot: ModelSlot  # what the live loop trades with
    registry: ModelRegistry
    trainer: AutoTrainer | None  # None: AUTO_RETRAIN is off
    warning: str  # why nothing (or not the pointer's version) is loaded; "" when all is well


def load_models(
    settings: Settings,
    fetch_bars: Callable[[int], pl.DataFrame],
    *,
    on_event: Callable[[Event], None],
    to_shadow: Callable[[str], str],
) -> LiveModels:
    """The active version, never training at start. `on_event` and `to_shadow` are called from the
    trainer's supervisor thread; `to_shadow` only when new models go to shadow first."""
    from models.autotrainer import SMC_ONLY_NOTE, AutoTrainer, AutoTrainerConfig, ensure_models
    from models.registry import ModelRegistry, ModelSlot

    registry = ModelRegistry(settings.models_dir)
    bundle, warning = ensure_models(registry, None, train_if_missing=False)
    slot = ModelSlot(bundle, note=(warning or "").removesuffix(SMC_ONLY_NOTE))  # why nothing is loaded
    trainer = None
    if settings.auto_retrain:
        config = AutoTrainerConfig(
            daily_hour_wib=settings.retrain_hour_wib, min_bars=settings.min_bars_for_training
        )
        shadow_first = settings.shadow_new_models and settings.shadow_max_challengers > 0
        trainer = AutoTrainer(
            registry,
            slot,
            fetch_bars=fetch_bars,
            config=config,
            on_event=on_event,
            to_shadow=to_shadow if shadow_first else None,
        )
    return LiveModels(slot, registry, trainer, warning or "")


def model_to_shadow(
    shadow: Callable[[], ShadowControl | None], loop: asyncio.AbstractEventLoop
) -> Callable[[str], str]:
    """The auto-trainer's hand-off (from its thread): start a new model as a challenger (bot.shadow) on
    `loop`; the line says what happened."""

    def to_shadow(version: str) -> str:
        service = shadow()
        if service is None:
            return f"shadow is off; /shadow add {version} starts it"
        future = asyncio.run_coroutine_threadsafe(
            service.add(model=version, params=None, by="autotrainer"), loop
        )
        spec = future.result(timeout=60)
        return f"trading in shadow as challenger #{spec.number}; /shadow shows how it does"

    return to_shadow


def build_backtester(
    settings: Settings, engine: TradingEngine, slot: ModelSlot, fetch_bars: Callable[[int], pl.DataFrame]
) -> BotBacktester:
    """/backtest over the bot's own closed bars, with the live parameters and the active models."""
    from bot.backtests import BotBacktester
    from charts.distribution import pnl_distribution_chart
    from charts.equity import equity_chart
    from trading.backtest import BacktestConfig

    def config() -> BacktestConfig:
        balance = engine.account.balance if engine.account else 5_000.0
        s = settings  # the paper account's costs: a backtest should not look cheaper than the account
        return BacktestConfig(
            balance=balance,
            commission_per_lot=s.paper_commission_per_lot,
            slippage_points=s.paper_slippage_points,
            leverage=s.paper_leverage,
            params=engine.params,
            limits=engine.limits,
        )

    def sources() -> tuple[Any, Any, str]:
        from models.live import SlotRegime, SlotSignal

        bundle = slot.current
        if bundle is None:
            return None, None, "no models: SMC-only"
        return SlotRegime(slot), SlotSignal(slot), f"model {bundle.version}"

    return BotBacktester(fetch_bars, config, sources, chart=equity_chart, distribution=pnl_distribution_chart)
