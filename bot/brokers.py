"""Builds the configured broker: paper (synthetic or replayed market), MetaTrader5, mt5linux, dry-run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config import Settings
from trading.broker.base import Broker
from trading.timezones import utc_now

BAR = timedelta(minutes=15)


@dataclass(slots=True)
class BrokerSetup:
    broker: Broker
    clock: Callable[[], datetime]  # the engine's clock: market time for a replayed market
    description: str
    feed: Any = None  # the paper broker's feed, when there is one


def _mt5(settings: Settings, kind: str) -> Broker:
    from trading.broker.mt5 import MT5Broker, create_mt5_module, mt5_module_factory

    module = create_mt5_module(kind, settings.mt5linux_host, settings.mt5linux_port)
    factory = mt5_module_factory(kind, settings.mt5linux_host, settings.mt5linux_port) if kind == "mt5linux" else None
    return MT5Broker(
        module, symbol=settings.symbol, magic=settings.magic, server_clock=settings.server_clock,
        login=settings.mt5_login,
        password=settings.mt5_password.get_secret_value() if settings.mt5_password else None,
        server=settings.mt5_server, path=settings.mt5_path, mt5_factory=factory,
    )


def synthetic_start(now: datetime, history: int) -> datetime:
    """The bar time from which `history` open-market M15 bars lead up to `now` (so the market is 'live')."""
    import polars as pl

    from trading.sessions import market_open_mask

    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    times = pl.datetime_range(end - BAR * (history * 2 + 2000), end - BAR, BAR, time_zone="UTC", eager=True)
    open_times = times.filter(pl.Series(market_open_mask(times)))
    return open_times[-history] if open_times.len() >= history else times[0]


def build_broker(settings: Settings) -> BrokerSetup:
    """The broker the settings ask for. Nothing is connected yet; MetaTrader5 is imported only here."""
    from trading.broker.feeds import DryRunFeed, ReplayFeed, SyntheticFeed
    from trading.broker.paper import PaperBroker

    paper_kwargs = dict(
        balance=settings.paper_balance, leverage=settings.paper_leverage,
        commission_per_lot=settings.paper_commission_per_lot, slippage_points=settings.paper_slippage_points,
    )
    if settings.broker in ("mt5", "mt5linux"):
        broker = _mt5(settings, settings.broker)
        return BrokerSetup(broker, utc_now, f"{settings.broker} live account, symbol {settings.symbol}")
    if settings.broker == "dry-run":
        source = _mt5(settings, settings.dry_run_source)
        state = settings.database_path.with_name("paper_account.json")
        broker = PaperBroker(settings.symbol, settings.magic, feed=DryRunFeed(source), state_path=state,
                             **paper_kwargs)
        return BrokerSetup(broker, utc_now, f"dry-run: real {settings.dry_run_source} prices, paper fills "
                                            f"(account kept in {state})")
    history = settings.analysis_history_bars + 50
    speed = settings.paper_replay_speed
    if settings.paper_feed == "replay":
        feed = ReplayFeed(settings.paper_replay_file, speed=speed, ticks_per_bar=60, history=history,
                          server_tz=settings.server_tz)
        what = f"replay of {settings.paper_replay_file}"
    else:
        start = synthetic_start(utc_now(), history)
        feed = SyntheticFeed(n_bars=history + 50_000, seed=settings.paper_seed, start=start, speed=speed,
                             ticks_per_bar=60, history=history)
        what = f"synthetic market (seed {settings.paper_seed})"
    broker = PaperBroker(settings.symbol, settings.magic, feed=feed, **paper_kwargs)
    return BrokerSetup(broker, feed.now, f"paper account on a {what} at {speed:g}× speed "
                                         f"(a new paper account each start)", feed)
