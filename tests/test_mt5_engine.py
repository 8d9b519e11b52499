"""The engine on MT5Broker over the fake module: an order whose reply is lost while its stop is hit before
the reconcile is still journaled as opened, and its close comes from the broker's deals (net of charges)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.engine_fixtures import FakeSetup, analysis
from tests.fake_mt5 import FakeMetaTrader5, Outcome
from trading.broker.mt5 import MT5Broker
from trading.engine import TradingEngine
from trading.events import EventBus
from trading.records import MemoryRecorder

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # the fake's tick time under NY+7
MAGIC = 777


async def _no_sleep(_: float) -> None:
    return None


class Analyzer:
    def __init__(self) -> None:
        self.next = analysis(
            setup=FakeSetup(entry=2400.2, stop_loss=2390.0, take_profit=2420.0),
            close=2400.0,
            recent_closes=(2399.0, 2399.5, 2400.0, 2400.0, 2400.0),
            bar_time=datetime(2026, 7, 1, 8, 45, tzinfo=UTC),
        )

    def __call__(self, bars: object):
        return self.next


async def engine_on(mt5: FakeMetaTrader5) -> tuple[TradingEngine, MemoryRecorder]:
    broker = MT5Broker(mt5, magic=MAGIC, sleep=_no_sleep, now=lambda: NOW)
    await broker.connect()
    rec = MemoryRecorder()
    engine = TradingEngine(
        broker,
        Analyzer(),
        recorder=rec,
        bus=EventBus(),
        clock=lambda: NOW,
        market_clock=lambda now: (None, None),
    )
    await engine.start(None)
    return engine, rec


async def test_lost_reply_and_a_stop_hit_before_the_reconcile_are_both_booked():
    mt5 = FakeMetaTrader5()
    mt5.commission_per_lot = 3.0
    engine, rec = await engine_on(mt5)
    mt5.queue(Outcome(retcode=10012, execute=True, move_to=(2389.0, 2389.2)))  # filled, then stopped out
    decision = await engine.on_bar(None)  # type: ignore[arg-type]
    assert decision.action == "enter", decision.reason
    [opened] = rec.opened
    assert opened.sl == 2390.0 and opened.open_price == 2400.2
    assert mt5.called("order_send") == 1 and mt5.positions == {}
    await engine.on_tick()
    [closed] = rec.closed
    assert closed.ticket == opened.ticket and closed.reason == "broker_sl"
    deals = [d for d in mt5.deals if d.position_id == opened.ticket]
    assert closed.profit == pytest.approx(sum(d.profit + d.commission + d.swap + d.fee for d in deals))
    assert engine.positions == {}
