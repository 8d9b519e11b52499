"""Challengers take every price live's paper account takes (trading/shadow.py `ShadowBook.follow`):
a stop reached between two live 1-second steps fills at that tick, as it does live."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from trading.broker.paper import PaperBroker
from trading.domain import DealReason, Side, Tick
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits
from trading.shadow import ChallengerSpec, ShadowBook, params_to_dict

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(ms: int, bid: float) -> Tick:
    return Tick(T0 + timedelta(milliseconds=ms), bid, round(bid + 0.2, 2))


def challenger() -> ChallengerSpec:
    return ChallengerSpec(
        number=1,
        model_version="live",
        params_name="slow",
        params=params_to_dict(StrategyParams(cooldown_seconds=1800)),
        limits=asdict(RiskLimits()),
        start_balance=10_000.0,
        started=T0,
        added_by="test",
    )


def no_setup(_bars: pl.DataFrame) -> object:
    raise AssertionError("no bar is decided in this test")


async def run(tmp_path: Path, follow: bool) -> tuple[list, list]:
    live = PaperBroker()  # live's paper account: it takes every tick (a replay's MarketLoop, a dry run)
    await live.connect()
    book = ShadowBook(tmp_path / ("on" if follow else "off"), lambda s: no_setup, lambda: T0)  # type: ignore[arg-type, return-value]
    if follow:
        book.follow(live)
    live.set_tick(at(0, 2000.0))
    runner = await book.add(challenger())
    await book.step(at(0, 2000.0))
    reference = PaperBroker(magic=runner.broker.magic)  # the same position on an account fed every tick
    await reference.connect()
    reference.set_tick(at(0, 2000.0))
    for broker in (runner.broker, reference):
        await broker.open_market(Side.BUY, 0.10, 1999.00, 2010.00)
    # one live step a second; in between, the price dips through the stop and comes back
    ticks = [at(0, 2000.0), at(300, 1999.4), at(600, 1998.7), at(800, 2000.3), at(1000, 2000.5)]
    steps = {0, 1000}
    for t in ticks[1:]:
        live.set_tick(t)
        reference.set_tick(t)
        ms = round((t.time - T0).total_seconds() * 1000)
        if ms in steps:
            await book.step(t)
    assert runner.errors == 0, runner.last_error
    return await runner.broker.deals_since(T0), await reference.deals_since(T0)


async def test_a_stop_between_two_live_steps_fills_at_its_tick(tmp_path: Path) -> None:
    ours, reference = await run(tmp_path, follow=True)
    out = [d for d in ours if d.reason is DealReason.SL]
    assert len(out) == 1 and out[0].time == T0 + timedelta(milliseconds=600)
    assert [(d.time, d.price, d.reason, d.volume) for d in ours] == [
        (d.time, d.price, d.reason, d.volume) for d in reference
    ]


async def test_without_following_the_stop_between_steps_is_missed(tmp_path: Path) -> None:
    """What the book did before it followed live's account: only the step's quote, so the dip is unseen."""
    ours, reference = await run(tmp_path, follow=False)
    assert [d.reason for d in reference] == [DealReason.CLIENT, DealReason.SL]
    assert [d.reason for d in ours] == [DealReason.CLIENT]


async def test_a_challenger_with_lives_strategy_fills_as_live_does_tick_for_tick(
    tmp_path: Path, monkeypatch
) -> None:
    """A replay with three ticks a second, so stops and targets are reached between live's 1-second
    steps: a challenger running live's own strategy (the oracle: it trades often, and its targets
    are met) books the same deals as live, at the same ticks and prices."""
    import os

    from tests.shadow_fixtures import book_factory, oracle, spec
    from trading.analyzer import MarketAnalyzer
    from trading.shadow import BarMemo
    from trading.shadow_replay import replay_with_shadow
    from trading.synthetic import generate_bars

    monkeypatch.setattr(os, "fsync", lambda fd: None)
    bars = generate_bars(232, seed=3)
    shared = BarMemo(MarketAnalyzer(history=200))
    live = oracle(bars, shared, +1)
    holder: dict[str, object] = {}

    def build(engine, clock):
        holder["engine"] = engine
        return book_factory(tmp_path, bars, shared)(engine, clock)

    async def add(book) -> None:
        await book.add(spec(1, "v901", holder["engine"]))  # the oracle too, with live's parameters

    r = await replay_with_shadow(bars, live, build, warmup=200, ticks_per_bar=2700, before_start=add)
    runner = r.book.runners[1]
    assert runner.errors == 0, runner.last_error

    def booked(deals: list) -> list:
        return [(d.time, d.side, d.entry, d.volume, d.price, d.reason, d.profit) for d in deals]

    ours = booked(await runner.broker.deals_since(T0.replace(year=2000)))
    theirs = booked(await r.broker.deals_since(T0.replace(year=2000)))
    closes = [d for d in theirs if d[5] in (DealReason.SL, DealReason.TP)]
    assert len(closes) >= 2 and any(d[0].microsecond for d in closes)  # some between whole seconds
    assert ours == theirs
