"""Hedging and netting accounts: the fake nets like MT5 does, and the adapter refuses to trade a netting account."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.fake_mt5 import FakeMetaTrader5
from trading.broker import mt5_constants as C
from trading.broker.base import BrokerError, BrokerErrorKind
from trading.broker.mt5 import MT5Broker, netting_refusal
from trading.domain import Side

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
MAGIC = 777


async def _no_sleep(_: float) -> None:
    return None


def make_broker(mt5: FakeMetaTrader5, **kw) -> MT5Broker:
    return MT5Broker(mt5, magic=MAGIC, sleep=_no_sleep, now=lambda: NOW, **kw)


def deal(side: int, volume: float, price: float) -> dict:
    return {
        "action": 1,
        "symbol": "XAUUSD",
        "volume": volume,
        "type": side,
        "price": price,
        "deviation": 20,
        "magic": MAGIC,
        "comment": "",
        "type_time": 0,
        "type_filling": 1,
    }


def started(margin_mode: int) -> FakeMetaTrader5:
    mt5 = FakeMetaTrader5()
    mt5.margin_mode = margin_mode
    assert mt5.initialize() and mt5.symbol_select("XAUUSD")
    return mt5


# ---- the fake's account modes ---------------------------------------------------------------------


def test_hedging_keeps_one_position_per_deal():
    mt5 = started(C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING)
    mt5.order_send(deal(0, 0.1, 2400.2))
    mt5.order_send(deal(0, 0.1, 2400.2))
    mt5.order_send(deal(1, 0.05, 2400.0))
    positions = mt5.positions_get(symbol="XAUUSD")
    assert sorted((p.type, p.volume) for p in positions) == [(0, 0.1), (0, 0.1), (1, 0.05)]
    assert all(p.identifier == p.ticket for p in positions)
    assert [d.entry for d in mt5.history_deals_get(0, 4_000_000_000)] == [0, 0, 0]


def test_netting_adds_reduces_and_reverses_one_position():
    mt5 = started(C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING)
    first = mt5.order_send(deal(0, 0.1, 2400.2))
    mt5.set_tick(2402.0, 2402.2)
    mt5.order_send(deal(0, 0.1, 2402.2))  # same side: the same position grows
    (pos,) = mt5.positions_get(symbol="XAUUSD")
    assert pos.ticket == first.order and pos.volume == pytest.approx(0.2)
    assert pos.price_open == pytest.approx(2401.2)
    mt5.order_send(deal(1, 0.05, 2402.0))  # opposite, smaller: reduced
    (pos,) = mt5.positions_get(symbol="XAUUSD")
    assert pos.ticket == first.order and pos.volume == pytest.approx(0.15) and pos.type == 0
    reverse = mt5.order_send(deal(1, 0.25, 2402.0))  # opposite, bigger: reversed
    (pos,) = mt5.positions_get(symbol="XAUUSD")
    assert pos.type == 1 and pos.volume == pytest.approx(0.1) and pos.price_open == 2402.0
    assert pos.ticket == reverse.order and pos.identifier == first.order  # ticket changes, identifier stays
    deals = mt5.history_deals_get(position=first.order)
    assert [(d.entry, d.type) for d in deals] == [(0, 0), (0, 0), (1, 1), (2, 1)]
    assert deals[3].profit == pytest.approx((2402.0 - 2401.2) * 100 * 0.15)
    mt5.order_send(deal(0, 0.1, 2402.2))  # opposite, equal: closed
    assert mt5.positions_get(symbol="XAUUSD") == ()


# ---- the adapter's decision ------------------------------------------------------------------------


def test_netting_refusal_text():
    assert netting_refusal(C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING) is None
    assert "retail netting" in netting_refusal(C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING)
    assert "exchange" in netting_refusal(C.ACCOUNT_MARGIN_MODE_EXCHANGE)
    assert "\n" not in netting_refusal(0)


async def test_hedging_account_trades():
    mt5 = FakeMetaTrader5()
    b = make_broker(mt5)
    await b.connect()
    assert b.connected and b.account_margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    one = await b.open_market(Side.BUY, 0.1, 0.0, 0.0)
    two = await b.open_market(Side.SELL, 0.1, 0.0, 0.0)  # its own position, not a close of the first
    assert {p.ticket for p in await b.positions()} == {one.ticket, two.ticket}


@pytest.mark.parametrize("mode", [C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING, C.ACCOUNT_MARGIN_MODE_EXCHANGE])
async def test_netting_account_is_refused_at_connect_with_one_line(mode):
    mt5 = FakeMetaTrader5()
    mt5.margin_mode = mode
    b = make_broker(mt5)
    with pytest.raises(BrokerError, match="needs a hedging account") as info:
        await b.connect()
    assert info.value.kind is BrokerErrorKind.CONFIG
    assert "\n" not in str(info.value)
    assert not b.connected
    assert mt5.called("initialize") == 1  # a configuration problem is not retried
    with pytest.raises(BrokerError, match="needs a hedging account"):
        await b.open_market(Side.BUY, 0.1, 0.0, 0.0)
    assert mt5.called("order_send") == 0


async def test_reconnect_to_a_netting_account_is_refused():
    mt5 = FakeMetaTrader5()
    b = make_broker(mt5)
    await b.connect()
    mt5.drop_connection()
    mt5.margin_mode = (
        C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
    )  # the terminal came back logged into another account
    with pytest.raises(BrokerError, match="nets positions"):
        await b.open_market(Side.BUY, 0.1, 0.0, 0.0)
    assert mt5.called("order_send") == 0


async def test_a_price_source_may_be_a_netting_account():
    mt5 = FakeMetaTrader5()
    mt5.margin_mode = C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
    b = make_broker(mt5, require_hedging=False)
    await b.connect()
    assert (await b.tick()).bid == 2400.0


async def test_no_account_information_at_connect_is_an_error():
    mt5 = FakeMetaTrader5()
    mt5.none_from["account_info"] = (-10004, "No IPC connection")
    b = make_broker(mt5, connect_attempts=1)
    with pytest.raises(BrokerError):
        await b.connect()
    assert not b.connected
