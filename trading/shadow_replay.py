"""Live and its challengers over recorded bars, through the same loop a paper replay runs.

`replay_with_shadow` drives the live engine with `MarketLoop` (every tick to the live paper account,
the engine's 1-second step, the bar decision) and, after each live step and bar decision, the
challengers of a `ShadowBook` exactly as the bot's trading job does; the book follows the live paper
account, so every tick reaches the challengers' accounts too. The bench (`bench/shadow.py`)
times the live step and bar with and without challengers with it, and the tests replay a synthetic
market where one challenger is better by construction and one worse.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import polars as pl

from trading.analysis import MarketAnalysis
from trading.broker.feeds import ReplayFeed
from trading.broker.paper import PaperBroker
from trading.domain import ClosedTrade
from trading.engine import TradingEngine
from trading.parameters import StrategyParams
from trading.records import MemoryRecorder
from trading.risk.modes import RiskLimits
from trading.shadow import ShadowBook
from trading.shadow_stats import Outcome
from trading.simulation import LoopEngine, MarketLoop, SimClock, history_window

Analyzer = Callable[[pl.DataFrame], MarketAnalysis]


@dataclass(slots=True)
class ReplayTimes:
    """Wall seconds of each live step / bar and of the challengers' work after it."""

    live_step: list[float] = field(default_factory=list)
    live_bar: list[float] = field(default_factory=list)
    shadow_step: list[float] = field(default_factory=list)
    shadow_bar: list[float] = field(default_factory=list)


@dataclass(slots=True)
class ShadowReplay:
    engine: TradingEngine
    broker: PaperBroker
    book: ShadowBook
    live_trades: list[ClosedTrade]
    times: ReplayTimes
    clock: SimClock
    live_risk: dict[int, float] = field(default_factory=dict)  # ticket -> money risked at entry

    def live_outcomes(self) -> list[Outcome]:
        return [Outcome(t.close_time, t.profit, self.live_risk.get(t.ticket, 0.0)) for t in self.live_trades]


class _TimedEngine:
    """The live engine as `MarketLoop` sees it, with each step and bar timed; the rest of the loop's
    engine port (`trading.quiet_ticks.EnginePort`, read by shortcuts this replay does not take) is the
    engine's own."""

    def __init__(self, engine: TradingEngine, times: ReplayTimes) -> None:
        self.engine, self.times = engine, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def on_tick(self) -> None:
        t0 = time.perf_counter()
        await self.engine.on_tick()
        self.times.live_step.append(time.perf_counter() - t0)

    async def on_bar(self, bars: pl.DataFrame) -> object:
        t0 = time.perf_counter()
        decision = await self.engine.on_bar(bars)
        self.times.live_bar.append(time.perf_counter() - t0)
        return decision


async def replay_with_shadow(
    bars: pl.DataFrame,
    live_analyzer: Analyzer,
    book_for: Callable[[TradingEngine, SimClock], ShadowBook],
    *,
    balance: float = 10_000.0,
    warmup: int = 200,
    ticks_per_bar: int = 60,
    params: StrategyParams | None = None,
    limits: RiskLimits | None = None,
    commission_per_lot: float = 0.0,
    history: int = 1500,
    before_start: Callable[[ShadowBook], object] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ShadowReplay:
    """Replay `bars` (after `warmup`) with the live engine and the book `book_for(engine, clock)` builds.
    `before_start(book)` may add challengers (an awaitable is awaited) once the live engine started;
    `progress(done, total)` hears of each bar decided."""
    feed = ReplayFeed(bars, speed=0, ticks_per_bar=ticks_per_bar, history=warmup)
    broker = PaperBroker(feed=feed, balance=balance, commission_per_lot=commission_per_lot)
    await broker.connect()
    clock = SimClock(bars["time"][warmup])
    recorder = MemoryRecorder(keep_decisions=False)
    engine = TradingEngine(
        broker,
        live_analyzer,
        params=params,
        limits=limits,
        recorder=recorder,
        clock=clock,
        full_decisions=False,
    )
    await engine.start()
    book = book_for(engine, clock)
    if before_start is not None:
        result = before_start(book)
        if inspect.isawaitable(result):
            await result
    times = ReplayTimes()

    book.follow(broker)  # every tick live's account takes, the challengers' accounts take too

    async def stepped(_now: datetime) -> None:
        quoted = book.quote_seconds  # the challengers' share of the ticks since the last step
        t0 = time.perf_counter()
        await book.step(engine.last_tick)
        times.shadow_step.append(time.perf_counter() - t0 + quoted)

    async def decided(bar: int, window: pl.DataFrame, _decision: object) -> None:
        t0 = time.perf_counter()
        await book.bar(window)
        times.shadow_bar.append(time.perf_counter() - t0)
        if progress is not None:
            progress(bar - warmup + 1, bars.height - warmup)

    loop = MarketLoop(
        feed,
        broker,
        cast(LoopEngine, _TimedEngine(engine, times)),
        clock,
        history_window(bars, history),
        on_decision=decided,
        on_step=stepped,
    )
    await loop.run()
    return ShadowReplay(
        engine, broker, book, recorder.closed, times, clock, {o.ticket: o.risk_money for o in recorder.opened}
    )
