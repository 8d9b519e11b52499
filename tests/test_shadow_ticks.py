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
