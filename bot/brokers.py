"""Builds the configured broker: paper (synthetic or replayed market), MetaTrader5, mt5linux, dry-run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
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
    market_state: Path | None = None  # where a paper market's resume point is kept
    market_init: dict[str, Any] | None = None  # written there once the data directory is usable
    speed: float = 0.0  # a replayed market's speed; its MarketLoop paces the ticks (the feed is manual)
    sim_clock: Any = None  # trading.simulation.SimClock of a replayed market (also `clock`)

    def save_market_init(self) -> None:
        if self.market_state is not None and self.market_init is not None:
            _write_json(self.market_state, self.market_init)


def mt5_broker(settings: Settings, kind: str, trades: bool = True) -> Broker:
    """The configured MetaTrader 5 connection (`kind` mt5 or mt5linux); `trades=False` for prices or
    history only, where a netting account is fine."""
    from trading.broker.mt5 import MT5Broker, create_mt5_module, mt5_module_factory

    module = create_mt5_module(kind, settings.mt5linux_host, settings.mt5linux_port)
    factory = (
        mt5_module_factory(kind, settings.mt5linux_host, settings.mt5linux_port)
        if kind == "mt5linux"
        else None
    )
    return MT5Broker(
        module,
        symbol=settings.symbol,
        magic=settings.magic,
        server_clock=settings.server_clock,
        login=settings.mt5_login,
        password=settings.mt5_password.get_secret_value() if settings.mt5_password else None,
        server=settings.mt5_server,
        path=settings.mt5_path,
        mt5_factory=factory,
        require_hedging=trades,
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
    from trading.broker.feeds import DryRunFeed
    from trading.broker.paper import PaperBroker

    paper_kwargs: dict[str, Any] = dict(
        balance=settings.paper_balance,
        leverage=settings.paper_leverage,
        commission_per_lot=settings.paper_commission_per_lot,
        slippage_points=settings.paper_slippage_points,
    )
    if settings.broker in ("mt5", "mt5linux"):
        broker = mt5_broker(settings, settings.broker)
        return BrokerSetup(broker, utc_now, f"{settings.broker} live account, symbol {settings.symbol}")
    if settings.broker == "dry-run":
        source = mt5_broker(settings, settings.dry_run_source, trades=False)  # prices only: netting is fine
        state = account_state_path(settings)
        broker = PaperBroker(
            settings.symbol, settings.magic, feed=DryRunFeed(source), state_path=state, **paper_kwargs
        )
        return BrokerSetup(
            broker,
            utc_now,
            f"dry-run: real {settings.dry_run_source} prices, paper fills (account kept in {state})",
        )
    return _paper_market(settings, paper_kwargs)


def feed_state_path(settings: Settings) -> Path:
    return settings.database_path.with_name("paper_market.json")


def account_state_path(settings: Settings) -> Path:
    return settings.database_path.with_name("paper_account.json")


def _market_identity(settings: Settings) -> dict[str, Any]:
    if settings.paper_feed == "replay":
        return {"kind": "replay", "file": str(Path(settings.paper_replay_file or "").resolve())}
    return {"kind": "synthetic", "seed": settings.paper_seed}


def _paper_market(settings: Settings, paper_kwargs: dict[str, Any]) -> BrokerSetup:
    """A paper account on a replayed or generated market. The account (paper_account.json) and the
    market's position (paper_market.json: where it started and the last closed bar the bot saw)
    survive a restart, so a restarted bot continues the same account on the same market."""
    from trading.broker.feeds import ReplayFeed
    from trading.broker.paper import PaperBroker
    from trading.intrabar import DEFAULT_TICKS_PER_BAR
    from trading.simulation import SimClock

    history = settings.analysis_history_bars + 50
    speed = settings.paper_replay_speed
    market_file, account_file = feed_state_path(settings), account_state_path(settings)
    saved = _read_json(market_file)
    identity = _market_identity(settings)
    resume = saved if saved and all(saved.get(k) == v for k, v in identity.items()) else None
    if resume is None:
        for stale in (market_file, account_file):  # another market: its account means nothing here
            if stale.exists():
                stale.replace(stale.with_suffix(".json.old"))
    if settings.paper_feed == "replay":
        from trading.bars import load_bars

        if settings.paper_replay_file is None:
            raise ValueError("PAPER_REPLAY_FILE is required when PAPER_FEED=replay")
        frame = load_bars(settings.paper_replay_file, server_tz=settings.server_tz)
        start = None
        what = f"replay of {settings.paper_replay_file}"
    else:
        from trading.synthetic import generate_bars

        start = datetime.fromisoformat(resume["start"]) if resume else synthetic_start(utc_now(), history)
        frame = generate_bars(history + 50_000, seed=settings.paper_seed, start=start)
        start = frame["time"][0]
        what = f"synthetic market (seed {settings.paper_seed})"
    shown = min(history, frame.height - 1)
    if resume and resume.get("last_bar"):
        seen = int(frame["time"].search_sorted(datetime.fromisoformat(resume["last_bar"]), side="right"))
        shown = max(shown, min(seen, frame.height - 1))
    broker = PaperBroker(settings.symbol, settings.magic, state_path=account_file, **paper_kwargs)
    # a restarted market goes on after the last moment anything saw: never back in time (a position
    # opened, or a stop filled, before the market's clock would otherwise be replayed a second time)
    seen_until = (
        [datetime.fromisoformat(resume["market_time"])] if resume and resume.get("market_time") else []
    )
    if broker.market_time is not None:
        seen_until.append(broker.market_time)
    feed = ReplayFeed(
        frame,
        speed=0,
        ticks_per_bar=DEFAULT_TICKS_PER_BAR,
        history=shown,
        resume_after=max(seen_until) if seen_until else None,
    )
    broker.feed = feed
    last_bar = resume.get("last_bar") if resume else None
    state = {
        **identity,
        "start": start.isoformat() if start else None,
        "last_bar": last_bar,
        "market_time": resume.get("market_time") if resume else None,
    }
    how = "continuing the saved paper account" if resume else "a new paper account"
    clock = SimClock(feed.now())
    return BrokerSetup(
        broker,
        clock,
        f"paper account on a {what} at {speed:g}× speed ({how})",
        feed,
        market_state=market_file,
        market_init=state,
        speed=speed,
        sim_clock=clock,
    )


def remember_last_bar(path: Path, bar_time: datetime, market_time: datetime | None = None) -> None:
    """Record the last closed bar the bot saw and the market time, so a restart resumes the market there."""
    state = _read_json(path) or {}
    state["last_bar"] = bar_time.isoformat()
    if market_time is not None:
        state["market_time"] = market_time.isoformat()
    _write_json(path, state)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
