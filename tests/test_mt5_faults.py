"""Fault paths of MT5Broker against the fake module: a None reply that executed, a stop hit between the fill
and the reconcile, two opens racing, a hung call, and the bridge client rebuilt in the middle of an order."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fake_mt5 import FakeMetaTrader5, Outcome
from trading.broker.base import BrokerError, BrokerErrorKind, ConnectionLost, OrderRejected
from trading.broker.mt5 import MT5Broker
from trading.domain import DealEntry, DealReason, Side

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
MAGIC = 777


async def _no_sleep(_: float) -> None:
    return None


def make_broker(mt5: Any, **kw: Any) -> MT5Broker:
    return MT5Broker(mt5, magic=MAGIC, sleep=_no_sleep, now=lambda: NOW, **kw)


class BridgeClient:
    """An mt5linux-like client onto a shared fake terminal. Once `dead` every call raises EOFError (what a
    dropped rpyc stream does); `die_after` kills it right after that function ran on the terminal."""

    built = 0

    def __init__(self, terminal: FakeMetaTrader5, die_after: str | None = None) -> None:
        self.terminal, self.die_after, self.dead = terminal, die_after, False
        BridgeClient.built += 1

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.terminal, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise EOFError("stream has been closed")
            result = attr(*args, **kwargs)
            if name == self.die_after:
                self.dead = True
                raise EOFError("connection closed by peer")
            return result

        return call


@pytest.fixture
def mt5() -> FakeMetaTrader5:
    return FakeMetaTrader5()


@pytest.fixture
async def broker(mt5: FakeMetaTrader5) -> MT5Broker:
    b = make_broker(mt5)
    await b.connect()
    return b


# ---- a None reply --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [(-1, "Terminal: Call failed"), (-10001, "IPC send failed")])
async def test_none_reply_for_an_order_that_executed_is_reconciled(broker, mt5, error):
    mt5.queue(Outcome(execute=True, error=error))
    res = await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    assert mt5.called("order_send") == 1
    (pos,) = await broker.positions()
    assert (res.ticket, res.volume, res.price, res.sl, res.tp) == (pos.ticket, 0.1, 2400.2, 2390.0, 2420.0)


async def test_none_reply_for_an_order_that_did_not_execute_is_not_resent(broker, mt5):
    mt5.queue(Outcome(error=(-1, "Terminal: Call failed")))
    with pytest.raises(BrokerError, match="outcome unknown") as info:
        await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    assert not isinstance(info.value, OrderRejected) and info.value.code == -1
    assert mt5.called("order_send") == 1 and await broker.positions() == []


async def test_none_reply_with_bad_arguments_is_a_refusal_without_reconciling(broker, mt5):
    mt5.queue(Outcome(error=(-2, 'Invalid "sl" argument')))
    calls = len(mt5.calls)
    with pytest.raises(OrderRejected):
        await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    assert [c[0] for c in mt5.calls[calls:]].count("positions_get") == 1  # the snapshot only


async def test_none_reply_to_a_close_that_executed(broker, mt5):
    ticket = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC)
    mt5.queue(Outcome(execute=True, error=(-1, "Terminal: Call failed")))
    res = await broker.close_position(ticket)
    assert res.ticket == ticket and res.price == 2400.0 and await broker.positions() == []
    assert mt5.called("order_send") == 1


# ---- a stop hit between the fill and the reconcile ----------------------------------------------


async def test_stop_hit_before_the_reconcile_still_reports_the_fill(broker, mt5):
    mt5.queue(Outcome(retcode=10012, execute=True, move_to=(2389.0, 2389.2)))  # filled, then SL 2390 hit
    res = await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    assert await broker.positions() == [] and mt5.called("order_send") == 1
    deals = await broker.deals_since(NOW - timedelta(minutes=1))
    assert [(d.position_ticket, d.entry, d.reason) for d in deals] == [
        (res.ticket, DealEntry.IN, DealReason.CLIENT),
        (res.ticket, DealEntry.OUT, DealReason.SL),
    ]
    assert (res.volume, res.price, res.sl, res.deal) == (0.1, 2400.2, 2390.0, deals[0].ticket)


async def test_an_older_closed_trade_is_not_taken_for_the_unknown_order(broker, mt5):
    first = await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    mt5.set_tick(2389.0, 2389.2)  # its SL hit: now an IN and an OUT deal of ours, no position
    mt5.set_tick(2400.0, 2400.2)
    mt5.queue(Outcome(retcode=10012))  # not executed
    with pytest.raises(BrokerError) as info:
        await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    assert info.value.kind is BrokerErrorKind.TIMEOUT and first.ticket > 0


# ---- two opens racing ------------------------------------------------------------------------------


async def test_two_racing_opens_with_unknown_outcomes_each_find_their_own_position(broker, mt5):
    mt5.queue(Outcome(retcode=10012, execute=True), Outcome(retcode=10012, execute=True))
    one, two = await asyncio.gather(
        broker.open_market(Side.BUY, 0.1, 0.0, 0.0), broker.open_market(Side.BUY, 0.2, 0.0, 0.0)
    )
    assert one.ticket != two.ticket
    assert (one.volume, two.volume) == (0.1, 0.2)
    assert sorted(p.ticket for p in await broker.positions()) == sorted([one.ticket, two.ticket])
    assert mt5.called("order_send") == 2


async def test_an_open_racing_a_close(broker, mt5):
    ticket = mt5.add_position(1, 0.1, 2410.0, magic=MAGIC)
    mt5.queue(Outcome(retcode=10012, execute=True))
    opened, closed = await asyncio.gather(
        broker.open_market(Side.SELL, 0.1, 0.0, 0.0), broker.close_position(ticket)
    )
    assert opened.ticket != ticket and closed.ticket == ticket
    assert [p.ticket for p in await broker.positions()] == [opened.ticket]


# ---- a hung call -----------------------------------------------------------------------------------


def hang(mt5: FakeMetaTrader5, name: str, release: threading.Event, execute_first: bool) -> None:
    original = getattr(mt5, name)

    def hung(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs) if execute_first else None
        release.wait(5)
        return result

    setattr(mt5, name, hung)
    mt5._restore = (name, original)  # type: ignore[attr-defined]


async def test_hung_bridge_order_is_reconciled_on_a_rebuilt_client(mt5):
    clients: list[BridgeClient] = []

    def factory() -> BridgeClient:
        clients.append(BridgeClient(mt5))
        return clients[-1]

    b = make_broker(BridgeClient(mt5), call_timeout=0.2, mt5_factory=factory)
    await b.connect()
    release = threading.Event()
    hang(mt5, "order_send", release, execute_first=True)  # executed at the server, the reply never comes
    try:
        started = time.monotonic()
        res = await b.open_market(Side.BUY, 0.1, 2390.0, 0.0)
        assert time.monotonic() - started < 3
        assert len(clients) == 1 and b._mt5 is clients[0]  # the hung client was replaced
        (pos,) = await b.positions()
        assert res.ticket == pos.ticket and mt5.sent.count(mt5.sent[0]) == 1 and len(mt5.sent) == 1
        assert (await b.account()).balance == 10_000.0  # calls no longer queue behind the hung one
    finally:
        release.set()


async def test_hung_order_that_never_executed_is_not_resent(mt5):
    b = make_broker(BridgeClient(mt5), call_timeout=0.2, mt5_factory=lambda: BridgeClient(mt5))
    await b.connect()
    release = threading.Event()
    hang(mt5, "order_send", release, execute_first=False)
    try:
        with pytest.raises(BrokerError) as info:
            await b.open_market(Side.BUY, 0.1, 2390.0, 0.0)
        assert info.value.kind is BrokerErrorKind.TIMEOUT
        assert len(mt5.sent) == 0 and await b.positions() == []
    finally:
        release.set()


async def test_a_call_queued_behind_a_hung_one_never_runs_late(mt5):
    b = make_broker(mt5, call_timeout=0.2, init_timeout=0.2)  # the Windows module: no client to rebuild
    await b.connect()
    release = threading.Event()
    hang(mt5, "positions_get", release, execute_first=False)
    with pytest.raises(BrokerError) as hung:
        await b.positions()
    assert hung.value.kind is BrokerErrorKind.TIMEOUT
    counts = {name: mt5.called(name) for name in ("initialize", "symbol_info", "order_send")}
    with pytest.raises(BrokerError):  # every reconnect waits for the lock the hung call holds, then gives up
        await b.open_market(Side.BUY, 0.1, 0.0, 0.0)
    release.set()
    await asyncio.sleep(0.3)
    assert {name: mt5.called(name) for name in counts} == counts  # none of them ran once the lock was free
    await b.connect()
    assert b.connected and mt5.called("initialize") == counts["initialize"] + 1


# ---- the bridge client rebuilt mid-order -----------------------------------------------------------


async def test_bridge_dies_right_after_the_order_executed(mt5):
    BridgeClient.built = 0
    b = make_broker(BridgeClient(mt5, die_after="order_send"), mt5_factory=lambda: BridgeClient(mt5))
    await b.connect()
    res = await b.open_market(Side.SELL, 0.1, 2410.0, 2380.0)
    assert BridgeClient.built == 2 and b.reconnects == 1
    (pos,) = await b.positions()
    assert (res.ticket, res.side, res.sl, res.tp) == (pos.ticket, Side.SELL, 2410.0, 2380.0)
    assert mt5.called("order_send") == 1


async def test_bridge_dies_before_the_order_is_sent(mt5):
    BridgeClient.built = 0
    b = make_broker(BridgeClient(mt5, die_after="positions_get"), mt5_factory=lambda: BridgeClient(mt5))
    await b.connect()
    res = await b.open_market(Side.BUY, 0.1, 0.0, 0.0)  # the snapshot's read is retried on a new client
    assert BridgeClient.built == 2 and mt5.called("order_send") == 1
    assert [p.ticket for p in await b.positions()] == [res.ticket]


async def test_bridge_that_stays_dead_reports_connection_lost_without_resending(mt5):
    b = make_broker(
        BridgeClient(mt5, die_after="order_send"),
        connect_attempts=2,
        mt5_factory=lambda: (_ for _ in ()).throw(ConnectionRefusedError(111, "refused")),
    )
    await b.connect()
    with pytest.raises(ConnectionLost):
        await b.open_market(Side.BUY, 0.1, 0.0, 0.0)
    assert mt5.called("order_send") == 1 and len(mt5.positions) == 1  # it did execute: found after restart
