"""A hung order that fills later (issue 20, item 3): `order_send` hangs past the adapter's timeout, the
engine books `order_failed`, then the order fills at the broker. The adopted position is journaled
against its decision (now `filled_late`) and announced, not left unlinked until its close."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.journal_recorder import JournalRecorder
from bot.messages import render_event
from bot.store import Journal
from tests.engine_fixtures import FakeSetup, analysis
from tests.fake_mt5 import FakeMetaTrader5
from trading.broker.mt5 import MT5Broker
from trading.domain import Position, Side
from trading.engine import TradingEngine
from trading.events import Event, EventBus, EventKind
from trading.late_fills import LATE_FILL_WINDOW, UnknownOrder, match_late_fill

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # the fake's tick time under NY+7
MAGIC = 777


async def _no_sleep(_: float) -> None:
    return None


class Bridge:
    """An mt5linux-like client onto the shared fake terminal (rebuilt by the adapter after a hung call)."""

    def __init__(self, terminal: FakeMetaTrader5) -> None:
        self.terminal = terminal

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)


def hang_then_fill(mt5: FakeMetaTrader5, release: threading.Event) -> None:
    """The next order_send blocks until `release`, then reaches the server and fills (its reply is lost)."""
    original = mt5.order_send

    def hung(request: dict) -> Any:
        mt5.order_send = original  # type: ignore[method-assign]
        release.wait(10)
        return original(request)

    mt5.order_send = hung  # type: ignore[method-assign]


class Analyzer:
    def __init__(self) -> None:
        self.next = analysis(
            setup=FakeSetup(entry=2400.2, stop_loss=2390.0, take_profit=2420.0),
            close=2400.0,
            recent_closes=(2399.0, 2399.5, 2400.0, 2400.0, 2400.0),
            bar_time=datetime(2026, 7, 1, 8, 45, tzinfo=UTC),
        )

    def __call__(self, bars: object) -> Any:
        return self.next


async def test_a_hung_order_that_fills_later_is_journaled_against_its_decision_and_announced(
    tmp_path: Path,
) -> None:
    mt5 = FakeMetaTrader5()
    broker = MT5Broker(
        Bridge(mt5),
        magic=MAGIC,
        sleep=_no_sleep,
        now=lambda: NOW,
        call_timeout=0.3,
        mt5_factory=lambda: Bridge(mt5),
    )
    await broker.connect()
    journal = await Journal(tmp_path / "j.db").open()
    bus = EventBus()
    events: list[Event] = []
    bus.on(events.append)
    engine = TradingEngine(
        broker,
        Analyzer(),
        recorder=JournalRecorder(journal),
        bus=bus,
        clock=lambda: NOW,
        market_clock=lambda now: (None, None),
    )
    await engine.start(None)
    release = threading.Event()
    hang_then_fill(mt5, release)
    try:
        decision = await engine.on_bar(None)  # type: ignore[arg-type]
        assert decision.action == "order_failed" and "did not answer in time" in decision.reason
        assert (await journal.decision(decision.id)).action == "order_failed"  # type: ignore[arg-type, union-attr]
        assert [e.kind for e in events] == [EventKind.ORDER_FAILED]
        release.set()
        for _ in range(100):  # the stale bridge call reaches the server and fills
            if mt5.positions:
                break
            await asyncio.sleep(0.02)
        [ticket] = mt5.positions
        await engine.on_tick()
    finally:
        release.set()
    try:
        assert ticket in engine.positions
        [row] = await journal.open_trades()
        assert row.ticket == ticket and row.decision_id == decision.id
        stored = await journal.decision(decision.id)  # type: ignore[arg-type]
        assert stored is not None and stored.action == "filled_late"
        assert (
            "filled late" in stored.reason
            and "booked as failed" in stored.reason
            and f"#{ticket}" in stored.reason
        )
        assert engine.last_decision is not None and engine.last_decision.action == "filled_late"
        [opened] = [e for e in events if e.kind is EventKind.TRADE_OPENED]
        assert opened.data["trade"].ticket == ticket and opened.data["trade"].decision_id == decision.id
        html = render_event(opened).html  # type: ignore[union-attr]
        assert f"#{ticket}" in html and "filled late" in html
        assert engine.state is not None and engine.state.last_entry_time == NOW  # the entry cooldown runs
        mt5.set_tick(2389.0, 2389.2)  # its stop is hit: the close books onto the same, linked row
        await engine.on_tick()
        [closed] = await journal.closed_trades()
        assert (
            closed.ticket == ticket
            and closed.decision_id == decision.id
            and closed.exit_reason == "broker_sl"
        )
    finally:
        await journal.close()


async def test_a_position_no_order_of_ours_explains_is_adopted_journaled_and_told(tmp_path: Path) -> None:
    mt5 = FakeMetaTrader5()
    broker = MT5Broker(mt5, magic=MAGIC, sleep=_no_sleep, now=lambda: NOW)
    await broker.connect()
    journal = await Journal(tmp_path / "j.db").open()
    bus = EventBus()
    events: list[Event] = []
    bus.on(events.append)
    engine = TradingEngine(
        broker,
        Analyzer(),
        recorder=JournalRecorder(journal),
        bus=bus,
        clock=lambda: NOW,
        market_clock=lambda now: (None, None),
    )
    await engine.start(None)
    try:
        ticket = mt5.add_position(0, 0.05, 2400.2, magic=MAGIC, sl=2390.0)
        await engine.on_tick()
        [row] = await journal.open_trades()
        assert row.ticket == ticket and row.decision_id is None and row.sl == 2390.0
        [info] = [e for e in events if e.kind is EventKind.INFO]
        assert f"adopted #{ticket}" in info.text and "did not open" in info.text
    finally:
        await journal.close()


def order(**kw: Any) -> UnknownOrder:
    from tests.notify_samples import decision

    base: dict[str, Any] = dict(
        decision=replace(decision(), id=7),
        symbol="XAUUSD",
        side=Side.BUY,
        volume=0.02,
        sl=2390.0,
        tp=2420.0,
        magic=MAGIC,
        comment="xau-bot",
        sent_at=NOW,
        error="timeout",
    )
    return UnknownOrder(**(base | kw))


def position(**kw: Any) -> Position:
    base: dict[str, Any] = dict(
        ticket=9,
        symbol="XAUUSD",
        side=Side.BUY,
        volume=0.02,
        open_price=2400.2,
        open_time=NOW + timedelta(seconds=40),
        sl=2390.0,
        tp=2420.0,
        magic=MAGIC,
        comment="xau-bot",
    )
    return Position(**(base | kw))


@pytest.mark.parametrize(
    "change",
    [
        dict(side=Side.SELL),
        dict(magic=1),
        dict(symbol="XAGUSD"),
        dict(volume=0.03),
        dict(open_time=NOW - timedelta(minutes=5)),
        dict(open_time=NOW + LATE_FILL_WINDOW + timedelta(seconds=1)),
    ],
)
def test_a_position_is_not_taken_for_an_order_it_cannot_be(change: dict[str, Any]) -> None:
    assert match_late_fill(position(), [order()]) is not None
    assert match_late_fill(position(**change), [order()]) is None


def test_the_order_whose_comment_the_position_carries_wins_then_the_latest_sent() -> None:
    a = order(sent_at=NOW, comment="xau-bot")
    b = order(sent_at=NOW + timedelta(seconds=10), comment="other")
    assert match_late_fill(position(), [a, b]) is a
    c = order(sent_at=NOW + timedelta(seconds=20))
    assert match_late_fill(position(), [a, b, c]) is c
    assert match_late_fill(position(volume=0.01), [a]) is a  # a partial fill or a volume cut still matches


async def test_an_order_whose_link_dropped_after_the_send_is_linked_when_its_position_shows() -> None:
    from tests.engine_fixtures import NOW as T
    from trading.broker.base import ConnectionLost
    from trading.broker.paper import PaperBroker
    from trading.domain import Tick
    from trading.records import MemoryRecorder

    class LostReply(PaperBroker):
        async def open_market(self, *args: Any, **kwargs: Any) -> Any:
            await super().open_market(*args, **kwargs)  # it filled; the reply never came
            raise ConnectionLost("link dropped after the send")

    broker = LostReply(balance=10_000.0)
    await broker.connect()
    broker.set_tick(Tick(T, 3299.8, 3300.0))
    rec = MemoryRecorder()
    bus = EventBus()
    events: list[Event] = []
    bus.on(events.append)
    engine = TradingEngine(
        broker,
        lambda bars: analysis(),
        recorder=rec,
        bus=bus,
        clock=lambda: T,
        market_clock=lambda now: (None, None),
    )
    await engine.start(None)
    with pytest.raises(ConnectionLost):
        await engine.on_bar(None)  # type: ignore[arg-type]
    [decision] = rec.decisions
    assert decision.action == "order_failed" and decision.reason.startswith("outcome unknown")
    await engine.on_tick()  # the reconnected broker shows the position
    [opened] = rec.opened
    assert opened.decision_id == decision.id and rec.decisions[-1].action == "filled_late"
    assert [e.kind for e in events] == [EventKind.ORDER_FAILED, EventKind.TRADE_OPENED]
