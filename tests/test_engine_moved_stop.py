"""The stop the broker really placed: the engine books it, and refuses a fill whose moved stop risks more
than the lot was sized for (a broker that widened a refused stop without cutting the volume)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.engine_fixtures import NOW
from trading.broker.paper import PaperBroker
from trading.domain import OrderResult, Side, SymbolSpec, Tick
from trading.engine import TradingEngine
from trading.events import Event, EventBus, EventKind
from trading.records import MemoryRecorder
from trading.risk.sizing import moved_stop_refusal


class MovingBroker(PaperBroker):
    """A paper broker that places the stop `shift` further away than asked and says so in the result."""

    def __init__(self, shift: float, volume_factor: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.shift, self.volume_factor = shift, volume_factor

    async def open_market(
        self, side: Side, volume: float, sl: float, tp: float, comment: str = ""
    ) -> OrderResult:
        moved = round(sl - side.sign * self.shift, 2)
        lots = round(volume * self.volume_factor, 2)
        fill = await super().open_market(side, lots, moved, tp, comment)
        return replace(fill, sl=moved, tp=tp)


async def start(broker: PaperBroker) -> tuple[TradingEngine, MemoryRecorder, list[Event]]:
    from tests.test_engine import StubAnalyzer

    await broker.connect()
    broker.set_tick(Tick(NOW, 3299.8, 3300.0))
    bus = EventBus()
    events: list[Event] = []
    bus.on(events.append)
    rec = MemoryRecorder()
    engine = TradingEngine(
        broker,
        StubAnalyzer(),
        recorder=rec,
        bus=bus,
        clock=lambda: NOW,
        market_clock=lambda now: (None, None),
    )
    await engine.start(None)
    return engine, rec, events


async def test_the_journal_and_the_position_carry_the_stop_the_broker_placed():
    # 10 away planned at 0.02 lot ($20); placed 12.5 away at 0.016 -> 0.01 lot ($12.50): less at risk, kept
    broker = MovingBroker(shift=2.5, volume_factor=0.5, balance=10_000.0)
    engine, rec, events = await start(broker)
    decision = await engine.on_bar(None)  # type: ignore[arg-type]
    assert decision.action == "enter"
    [opened] = rec.opened
    assert opened.sl == 3287.5 and opened.volume == 0.01
    [pos] = engine.positions.values()
    assert pos.sl == 3287.5
    assert "SL 3287.50" in next(e for e in events if e.kind is EventKind.TRADE_OPENED).text
    assert rec.closed == []


async def test_a_moved_stop_that_risks_more_than_sized_is_closed_at_once():
    broker = MovingBroker(shift=5.0, balance=10_000.0)  # 15 away at the full 0.02 lot: $30 > $20
    engine, rec, _ = await start(broker)
    await engine.on_bar(None)  # type: ignore[arg-type]
    [opened] = rec.opened
    assert opened.sl == 3285.0
    [closed] = rec.closed
    assert closed.ticket == opened.ticket and closed.reason == "stop_moved"
    assert "more than the $20.00" in closed.extra["detail"]
    assert broker.positions_now() == [] and engine.positions == {}


@pytest.mark.parametrize(
    ("placed_sl", "placed_lots", "refused"),
    [
        (3290.0, 0.02, False),  # as planned
        (3289.99, 0.02, False),  # within the 1 % slack (rounding)
        (3288.0, 0.02, True),  # 12 away at the same lot: 20 % more at risk
        (3280.0, 0.01, False),  # twice as far at half the lot: the same money
        (0.0, 0.02, True),  # no stop at all
    ],
)
def test_moved_stop_refusal(placed_sl, placed_lots, refused):
    why = moved_stop_refusal(
        side_sign=1,
        price=3300.0,
        planned_sl=3290.0,
        placed_sl=placed_sl,
        planned_lots=0.02,
        placed_lots=placed_lots,
        spec=SymbolSpec(),
    )
    assert (why is not None) is refused


def test_moved_stop_refusal_for_a_sell_and_without_a_planned_stop():
    spec = SymbolSpec()
    assert (
        moved_stop_refusal(
            side_sign=-1,
            price=3300.0,
            planned_sl=3310.0,
            placed_sl=3315.0,
            planned_lots=0.02,
            placed_lots=0.02,
            spec=spec,
        )
        is not None
    )
    assert (
        moved_stop_refusal(
            side_sign=-1,
            price=3300.0,
            planned_sl=0.0,
            placed_sl=3315.0,
            planned_lots=0.02,
            placed_lots=0.02,
            spec=spec,
        )
        is None
    )
