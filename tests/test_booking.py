"""Every booked P/L is the broker's: profit + commission + swap + fee of the position's deals. A close
booked at an estimate (the deal history lagged) is read again and corrected when the deal appears."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.engine_fixtures import NOW
from tests.test_engine import Clock, StubAnalyzer
from trading.broker.paper import PaperBroker
from trading.domain import Deal, DealEntry, DealReason, Side, Tick
from trading.engine import ESTIMATE_RECHECK, PL_SOURCE, TradingEngine, closed_trade_from_deals
from trading.events import Event, EventBus, EventKind
from trading.records import MemoryRecorder


class LaggingHistoryBroker(PaperBroker):
    """A broker whose deal history shows nothing until `lagging` is switched off (MT5's history can lag)."""

    lagging = True

    async def deals_since(self, since):  # type: ignore[no-untyped-def]
        return [] if self.lagging else await super().deals_since(since)


class EarlyDatedBroker(PaperBroker):
    """A broker that dates the closing deal before the position's own open (a restarted market that
    resumed earlier than where it stopped did so)."""

    async def deals_since(self, since):  # type: ignore[no-untyped-def]
        deals = [
            replace(d, time=d.time - timedelta(minutes=10)) if d.entry is DealEntry.OUT else d
            for d in self._deals
        ]
        return [d for d in deals if d.time >= since]


async def _engine(broker: PaperBroker) -> tuple[TradingEngine, MemoryRecorder, Clock, list[Event]]:
    clock = Clock(NOW)
    await broker.connect()
    broker.set_tick(Tick(NOW, 3299.8, 3300.0))
    bus = EventBus()
    events: list[Event] = []
    bus.on(events.append)
    rec = MemoryRecorder()
    engine = TradingEngine(
        broker, StubAnalyzer(), recorder=rec, bus=bus, clock=clock, market_clock=lambda now: (None, None)
    )
    await engine.start()
    decision = await engine.on_bar(None)  # type: ignore[arg-type]
    assert decision.action == "enter", decision.reason
    return engine, rec, clock, events


async def _stop_out_at(engine: TradingEngine, broker: PaperBroker, clock: Clock, bid: float) -> None:
    clock.advance(seconds=1)
    broker.set_tick(Tick(clock.now, bid, round(bid + 0.2, 2)))
    await engine.on_tick()


async def test_a_close_booked_at_an_estimate_is_corrected_when_the_deal_appears() -> None:
    broker = LaggingHistoryBroker(balance=10_000.0, commission_per_lot=3.5, slippage_points=30)
    engine, rec, clock, events = await _engine(broker)
    await _stop_out_at(engine, broker, clock, 3289.0)  # through the 3290 stop; the broker fills with slippage
    [booked] = rec.closed
    assert booked.extra[PL_SOURCE] == "estimate" and booked.reason == "broker"
    assert engine.state.daily_realized == pytest.approx(booked.profit)

    clock.advance(seconds=1)
    await engine.on_tick()  # still lagging: nothing changes, the estimate stays watched
    assert rec.corrections == []
    broker.lagging = False
    clock.advance(seconds=ESTIMATE_RECHECK.total_seconds())
    await engine.on_tick()
    [(old, new)] = rec.corrections
    deals = [d for d in broker._deals if d.position_ticket == booked.ticket]
    assert [d.entry for d in deals] == [DealEntry.IN, DealEntry.OUT]
    truth = round(sum(d.net for d in deals), 2)
    assert truth != pytest.approx(old.profit)  # slippage and the commissions made the estimate wrong
    assert rec.closed == [new] and new.profit == truth and new.extra[PL_SOURCE] == "deals"
    assert new.reason == "broker_sl" and new.extra["commission"] == pytest.approx(-0.14)  # 2 x 0.02 lot x 3.5
    assert engine.state.daily_realized == pytest.approx(truth)
    assert engine.state.daily_trades == 1  # corrected, not counted twice
    assert broker.balance == pytest.approx(10_000.0 + truth)
    assert any(e.kind is EventKind.INFO and "corrected" in e.text for e in events)
    clock.advance(seconds=60)
    await engine.on_tick()
    assert len(rec.corrections) == 1  # read once more, never again


async def test_an_estimated_loss_that_was_really_a_win_ends_the_loss_streak() -> None:
    broker = LaggingHistoryBroker(balance=10_000.0, commission_per_lot=3.5)
    engine, rec, clock, _ = await _engine(broker)
    await _stop_out_at(engine, broker, clock, 3289.0)
    [booked] = rec.closed
    assert booked.profit < 0 and engine.state.consecutive_losses == 1
    # the broker's deal says the close was a win (a fill far better than the estimate's price)
    assert await engine.correct_close(replace(booked, profit=3.0), booked.profit, booked.close_time)
    assert engine.state.consecutive_losses == 0 and engine.state.daily_wins == 1
    assert list(engine.recent_profits) == [3.0]


async def test_a_closing_deal_dated_before_its_open_is_still_found() -> None:
    broker = EarlyDatedBroker(balance=10_000.0, commission_per_lot=3.5)
    engine, rec, clock, _ = await _engine(broker)
    await _stop_out_at(engine, broker, clock, 3289.0)
    [trade] = rec.closed
    assert trade.extra[PL_SOURCE] == "deals" and trade.reason == "broker_sl"
    assert trade.profit == pytest.approx(-22.0 - 0.14)
    assert trade.close_time >= trade.open_time  # the journal refuses a close before the open


async def test_an_engine_close_books_the_deals_commission_and_swap() -> None:
    broker = PaperBroker(balance=10_000.0, commission_per_lot=5.0)
    engine, _, clock, _ = await _engine(broker)
    [ticket] = list(engine.positions)
    clock.advance(seconds=1)
    broker.set_tick(Tick(clock.now, 3305.0, 3305.2))
    trade = await engine.close(ticket, by="test")
    assert trade is not None and trade.extra[PL_SOURCE] == "deals"
    assert trade.profit == pytest.approx(10.0 - 0.2) and trade.extra["commission"] == pytest.approx(-0.2)
    assert broker.balance == pytest.approx(10_000.0 + trade.profit)


def test_closed_trade_from_deals_sums_every_charge_and_needs_a_closing_deal() -> None:
    from trading.domain import Position

    pos = Position(ticket=7, symbol="XAUUSD", side=Side.BUY, volume=0.1, open_price=2000.0, open_time=NOW)
    d_in = Deal(
        ticket=8,
        position_ticket=7,
        symbol="XAUUSD",
        side=Side.BUY,
        entry=DealEntry.IN,
        volume=0.1,
        price=2000.0,
        time=NOW,
        commission=-0.35,
    )
    d_out = Deal(
        ticket=9,
        position_ticket=7,
        symbol="XAUUSD",
        side=Side.SELL,
        entry=DealEntry.OUT,
        volume=0.1,
        price=2010.0,
        time=NOW + timedelta(hours=30),
        profit=100.0,
        commission=-0.35,
        swap=-1.27,
        fee=-0.03,
        reason=DealReason.TP,
    )
    other = replace(d_out, ticket=10, position_ticket=11, profit=555.0)
    assert closed_trade_from_deals(pos, [d_in], "broker", "") is None
    trade = closed_trade_from_deals(pos, [other, d_out, d_in], "broker", "tp")
    assert trade is not None
    assert trade.profit == pytest.approx(100.0 - 0.7 - 1.27 - 0.03) and trade.reason == "broker_tp"
    assert trade.extra["swap"] == pytest.approx(-1.27) and trade.extra["deals"] == [8, 9]
    assert trade.close_price == 2010.0 and trade.close_time == d_out.time


async def test_an_estimate_is_watched_for_a_day_then_left_to_the_start_up_reconcile() -> None:
    broker = LaggingHistoryBroker(balance=10_000.0, commission_per_lot=3.5)
    engine, rec, clock, _ = await _engine(broker)
    await _stop_out_at(engine, broker, clock, 3289.0)
    [booked] = rec.closed
    assert booked.ticket in engine._estimated
    clock.advance(days=1, seconds=10)
    await engine.on_tick()
    assert engine._estimated == {}
    broker.lagging = False
    clock.advance(seconds=10)
    await engine.on_tick()
    assert rec.corrections == []  # no more broker reads for it
    engine.watch_estimate(replace(booked, close_time=clock.now))  # as a start-up reconcile hands it back
    await engine.on_tick()
    [(_, new)] = rec.corrections
    assert new.extra[PL_SOURCE] == "deals"
