"""The engine builds no event for a bus nobody hears (a backtest's), and every event for one that is heard:
a subscriber, a listener, or a holding bus whose holder may keep it back to publish later."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.journal_guard import HoldingBus
from trading.broker.paper import PaperBroker
from trading.engine import TradingEngine
from trading.events import Event, EventBus, EventKind

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def _engine(bus: EventBus) -> TradingEngine:
    return TradingEngine(PaperBroker(), lambda _bars: None, bus=bus, clock=lambda: NOW)  # type: ignore[arg-type,return-value]


def test_a_bus_is_heard_while_it_has_a_listener_or_a_subscriber() -> None:
    bus = EventBus()
    assert not bus.listened()
    bus.on(lambda _event: None)
    assert bus.listened()
    other = EventBus()
    queue = other.subscribe()
    assert other.listened()
    other.unsubscribe(queue)
    assert not other.listened()


def test_a_heard_bus_gets_the_engines_event_as_before() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.on(seen.append)
    _engine(bus)._publish(EventKind.SL_MOVED, "#7 SL → 3300.00 (trailing)", ticket=7, sl=3300.0)
    assert seen == [Event(EventKind.SL_MOVED, NOW, {"ticket": 7, "sl": 3300.0}, "#7 SL → 3300.00 (trailing)")]


def test_an_unheard_bus_gets_nothing_and_a_later_subscriber_only_later_events() -> None:
    bus = EventBus()
    engine = _engine(bus)
    engine._publish(EventKind.INFO, "before anyone listens")
    queue = bus.subscribe()
    engine._publish(EventKind.INFO, "after")
    assert queue.qsize() == 1 and queue.get_nowait().text == "after"


def test_a_holding_bus_with_no_listener_yet_still_gets_the_event_to_hold() -> None:
    bus = HoldingBus()
    held: list[Event] = []

    def hold(event: Event) -> bool:  # keeps every event
        held.append(event)
        return True

    bus.holder = hold
    _engine(bus)._publish(EventKind.TRADE_CLOSED, "closed #7", ticket=7)
    assert [e.text for e in held] == ["closed #7"]
    queue = bus.subscribe()  # the listener arrives before the held event is released
    bus.release(held[0])
    assert asyncio.Queue.get_nowait(queue).text == "closed #7"
