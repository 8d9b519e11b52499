"""Replay, synthetic and dry-run feeds: order, timing, no look-ahead, and the paper broker on them."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from trading.bars import BAR_SCHEMA, closed_bars, validate_bars
from trading.broker.base import BrokerError, ConnectionLost
from trading.broker.feeds import DryRunFeed, Feed, ReplayFeed, SyntheticFeed
from trading.broker.paper import PaperBroker
from trading.domain import DealReason, Side, Tick

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def frame(gap_days: int = 0) -> pl.DataFrame:
    """Three bars. Paths (N=4): 2000,1999,2002,2001 | 2001,2000.5,2003,2002.5 | 2002.5,2002,2004,2003.5"""
    times = [T0, T0 + 15 * M, T0 + 30 * M + timedelta(days=gap_days)]
    return validate_bars(
        pl.DataFrame(
            {
                "time": times,
                "open": [2000.0, 2001.0, 2002.5],
                "high": [2002.0, 2003.0, 2004.0],
                "low": [1999.0, 2000.5, 2002.0],
                "close": [2001.0, 2002.5, 2003.5],
                "tick_volume": [40, 80, 120],
                "spread": [20, 20, 30],
                "real_volume": [0, 0, 0],
            },
            schema=BAR_SCHEMA,
        )
    )


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


async def test_manual_replay_ticks_follow_the_path_in_order() -> None:
    feed = ReplayFeed(frame(), speed=0, ticks_per_bar=4)
    assert isinstance(feed, Feed)
    assert await feed.tick() is None and (await feed.bars(5)).height == 0
    ticks = [await feed.next_tick() for _ in range(12)]
    assert [t.bid for t in ticks] == [
        2000.0,
        1999.0,
        2002.0,
        2001.0,
        2001.0,
        2000.5,
        2003.0,
        2002.5,
        2002.5,
        2002.0,
        2004.0,
        2003.5,
    ]
    assert [t.ask for t in ticks[:2]] == [2000.20, 1999.20] and ticks[-1].ask == 2003.80
    assert [t.time - T0 for t in ticks[:5]] == [
        timedelta(0),
        timedelta(seconds=225),
        timedelta(seconds=450),
        timedelta(seconds=675),
        15 * M,
    ]
    assert await feed.next_tick() is None and feed.finished
    assert (await feed.bars(10)).equals(frame())


async def test_forming_bar_never_shows_its_future() -> None:
    feed = ReplayFeed(frame(), speed=0, ticks_per_bar=4)
    expected = [  # (open, high, low, close) of the last row after each tick of bar 0, then bar 1's first
        (2000.0, 2000.0, 2000.0, 2000.0),
        (2000.0, 2000.0, 1999.0, 1999.0),
        (2000.0, 2002.0, 1999.0, 2002.0),
        (2000.0, 2002.0, 1999.0, 2001.0),
        (2001.0, 2001.0, 2001.0, 2001.0),
    ]
    for i, ohlc in enumerate(expected):
        await feed.next_tick()
        bars = await feed.bars(10)
        assert bars.schema == pl.Schema(BAR_SCHEMA)
        assert bars.height == (1 if i < 4 else 2)
        assert bars.select("open", "high", "low", "close").row(-1) == ohlc
        assert bars["time"][-1] == (T0 if i < 4 else T0 + 15 * M)
    assert bars.row(0) == frame().row(0)  # the closed bar is the real one
    assert bars["tick_volume"][-1] == 20  # a quarter of bar 1's 80 ticks so far
    # closed_bars with the feed's clock drops the forming bar
    assert closed_bars(bars, feed.now()).height == 1
    assert feed.now() == T0 + 15 * M


async def test_no_look_ahead_on_real_bars(shared_bars) -> None:
    source = shared_bars.head(40)
    feed = ReplayFeed(source, speed=0, ticks_per_bar=6, history=5)
    assert (await feed.bars(100)).equals(source.head(5))
    high = low = None
    current = None
    while (tick := await feed.next_tick()) is not None:
        last = (await feed.bars(3)).row(-1, named=True)
        if last["time"] != current:
            current, high, low = last["time"], tick.bid, tick.bid
        high, low = max(high, tick.bid), min(low, tick.bid)
        assert (last["high"], last["low"], last["close"]) == (high, low, tick.bid)
        assert last["time"] <= tick.time < last["time"] + 15 * M
    assert (await feed.bars(100)).equals(source)


async def test_history_and_manual_advance() -> None:
    feed = ReplayFeed(frame(), speed=0, ticks_per_bar=4, history=2)
    assert (await feed.bars(10)).equals(frame().head(2))
    assert await feed.tick() == Tick(T0 + 15 * M + timedelta(seconds=675), 2002.5, 2002.7)
    first = await feed.next_tick()
    assert (first.time, first.bid) == (T0 + 30 * M, 2002.5)

    manual = ReplayFeed(frame(), speed=0, ticks_per_bar=4)
    manual.advance_bars(1)
    assert (await manual.bars(10)).equals(frame().head(1))
    manual.advance(2)
    assert (await manual.bars(10))["close"].to_list() == [2001.0, 2000.5]
    manual.advance_bars(5)
    assert (await manual.bars(2)).equals(frame().tail(2))
    # released ticks are still handed out in order, from the first
    assert (await manual.next_tick()).bid == 2000.0


async def test_timed_replay_releases_bars_as_time_passes() -> None:
    clock = FakeClock()
    feed = ReplayFeed(frame(), speed=3000, ticks_per_bar=4, clock=clock, sleep=clock.sleep)
    assert (await feed.tick()).bid == 2000.0  # the first tick is out at the start
    clock.t = 0.2  # 600 s of market time: three ticks of bar 0
    assert (await feed.tick()).bid == 2002.0
    assert (await feed.bars(5)).select("high", "low").row(-1) == (2002.0, 1999.0)
    clock.t = 0.31  # 930 s: bar 1 has started
    assert (await feed.bars(5)).height == 2
    # the backlog comes out without waiting, then next_tick sleeps until the next tick is due
    assert [(await feed.next_tick()).bid for _ in range(5)] == [2000.0, 1999.0, 2002.0, 2001.0, 2001.0]
    assert clock.slept == []
    assert (await feed.next_tick()).bid == 2000.5
    assert clock.slept == [pytest.approx(0.375 - 0.31)]


async def test_gaps_take_no_replay_time_unless_asked() -> None:
    for skip, rows in ((True, 3), (False, 2)):
        clock = FakeClock()
        feed = ReplayFeed(frame(gap_days=2), speed=3000, ticks_per_bar=4, skip_gaps=skip, clock=clock)
        await feed.tick()
        clock.t = 0.61
        assert (await feed.bars(5)).height == rows


async def test_replay_refuses_bad_arguments(tmp_path) -> None:
    for kwargs, message in [
        ({"speed": -1}, "speed"),
        ({"ticks_per_bar": 3}, "at least 4"),
        ({"history": 4}, "history"),
    ]:
        with pytest.raises(ValueError, match=message):
            ReplayFeed(frame(), **kwargs)
    with pytest.raises(ValueError, match="at least one bar"):
        ReplayFeed(frame().head(0))
    with pytest.raises(FileNotFoundError):
        ReplayFeed(tmp_path / "missing.parquet")


async def test_replay_from_file(shared_bars_path, shared_bars) -> None:
    feed = ReplayFeed(shared_bars_path, speed=0, ticks_per_bar=4, history=100)
    assert (await feed.bars(100)).equals(shared_bars.head(100))


async def test_paper_broker_on_a_replay_fills_a_stop_crossed_inside_the_bar_at_the_stop() -> None:
    feed = ReplayFeed(frame(), speed=0, ticks_per_bar=4)
    broker = PaperBroker(feed=feed)
    await broker.connect()
    feed.advance(1)
    assert await broker.tick() == Tick(T0, 2000.0, 2000.2)
    await broker.open_market(Side.BUY, 0.10, 1999.50, 2010.0)
    assert await broker.run() == 12
    (deal,) = [d for d in await broker.deals_since(T0) if d.reason is DealReason.SL]
    # the next tick of the bar's walk goes from 2000.00 to 1999.00, through the stop: filled at the stop
    # (MT5's tester), not at the vertex
    assert (deal.price, deal.time, deal.profit) == (1999.5, T0 + timedelta(seconds=225), -7.0)
    assert (await broker.bars(10)).equals(frame())
    with pytest.raises(BrokerError, match="M15 bars only"):
        await broker.bars(10, timeframe_minutes=60)


async def test_fast_real_time_replay_runs_to_the_end() -> None:
    feed = ReplayFeed(frame(), speed=1e6, ticks_per_bar=4)  # 45 minutes of market in ~3 ms
    broker = PaperBroker(feed=feed)
    await broker.connect()
    assert await asyncio.wait_for(broker.run(), timeout=10) == 12
    assert feed.finished and broker.now() == T0 + 30 * M + timedelta(seconds=675)
    assert (await broker.tick()).bid == 2003.5


async def test_synthetic_feed_imports_the_generator_lazily(monkeypatch) -> None:
    calls = []

    def generate_bars(n: int, seed: int, start: datetime | None = None) -> pl.DataFrame:
        calls.append((n, seed, start))
        return frame().head(n)

    fake = types.ModuleType("trading.synthetic")
    fake.generate_bars = generate_bars  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trading.synthetic", fake)
    feed = SyntheticFeed(2, seed=7, speed=0, ticks_per_bar=4, history=1)
    assert calls == [(2, 7, None)]
    assert (await feed.bars(5)).equals(frame().head(1))
    SyntheticFeed(3, seed=1, start=T0, speed=0)
    assert calls[-1] == (3, 1, T0)


class FlakySource:
    """A stand-in for MT5: the first price poll fails."""

    symbol, magic, connected = "XAUUSD", 1, True

    def __init__(self) -> None:
        self.polls = 0

    async def tick(self) -> Tick:
        self.polls += 1
        if self.polls == 1:
            raise ConnectionLost("terminal went away")
        return Tick(T0 + self.polls * M, 2000.0 + self.polls, 2000.2 + self.polls)


async def test_dry_run_takes_prices_from_the_source_and_fills_on_paper() -> None:
    source = PaperBroker(magic=1)  # stands in for the MT5 broker
    clock = FakeClock()
    paper = PaperBroker(feed=DryRunFeed(source, poll_interval=0.5, sleep=clock.sleep))
    await paper.connect()
    assert source.connected  # the feed connected its source
    source.set_tick(Tick(T0, 2000.0, 2000.3))
    assert await paper.tick() == Tick(T0, 2000.0, 2000.3)
    await paper.open_market(Side.BUY, 0.10, 1999.0, 2010.0)
    assert await source.positions() == []  # nothing was sent to the real broker
    source.set_tick(Tick(T0 + M, 1998.9, 1999.2))
    assert await paper.positions() == []  # the SL hit when the paper broker read the new price
    (deal,) = [d for d in await paper.deals_since(T0) if d.reason is DealReason.SL]
    assert deal.price == 1998.9
    source.apply_bar(
        {
            "time": T0,
            "open": 2000.0,
            "high": 2001.0,
            "low": 1998.0,
            "close": 1999.0,
            "tick_volume": 5,
            "spread": 30,
            "real_volume": 0,
        }
    )
    assert (await paper.bars(5)).equals(await source.bars(5))


async def test_dry_run_next_tick_survives_a_failed_poll_and_skips_repeats() -> None:
    clock = FakeClock()
    feed = DryRunFeed(FlakySource(), poll_interval=0.5, sleep=clock.sleep)  # type: ignore[arg-type]
    first = await feed.next_tick()
    assert first.bid == 2002.0 and clock.slept == [0.5]
    second = await feed.next_tick()
    assert second.bid == 2003.0
    with pytest.raises(ValueError):
        DryRunFeed(FlakySource(), poll_interval=0)  # type: ignore[arg-type]
