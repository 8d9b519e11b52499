"""The fake MetaTrader5 module itself: real constant values, record shapes, round-trips, faults."""

from __future__ import annotations

import numpy as np

import trading.broker.mt5_constants as C
from tests.fake_mt5 import RATES_DTYPE, FakeMetaTrader5, Outcome, TradeDeal, TradePosition
from trading.bars import MT5_RATES_DTYPE


def test_key_constants_have_the_real_values():
    m = FakeMetaTrader5
    assert (m.ORDER_FILLING_FOK, m.ORDER_FILLING_IOC, m.ORDER_FILLING_RETURN) == (0, 1, 2)
    assert (m.TRADE_ACTION_DEAL, m.TRADE_ACTION_SLTP) == (1, 6)
    assert (m.TIMEFRAME_M15, m.TIMEFRAME_H1, m.TIMEFRAME_D1) == (15, 16385, 16408)
    assert m.TRADE_RETCODE_DONE == 10009
    assert (m.DEAL_REASON_SL, m.DEAL_REASON_TP) == (4, 5)
    assert not hasattr(m, "SYMBOL_FILLING_FOK")  # the real package does not export it


def test_adapter_constants_agree_with_the_fake():
    shared = [n for n in dir(C) if n.isupper() and hasattr(FakeMetaTrader5, n)]
    assert len(shared) > 80
    for name in shared:
        assert getattr(C, name) == getattr(FakeMetaTrader5, name), name
    retcodes = {v for k, v in vars(FakeMetaTrader5).items() if k.startswith("TRADE_RETCODE_")}
    assert retcodes <= set(C.RETCODES)


def test_record_field_order():
    assert TradePosition._fields[:6] == (
        "ticket",
        "time",
        "time_msc",
        "time_update",
        "time_update_msc",
        "type",
    )
    assert TradeDeal._fields[4:9] == ("type", "entry", "magic", "position_id", "reason")
    assert RATES_DTYPE == MT5_RATES_DTYPE


def test_calls_before_initialize_fail_with_no_ipc():
    mt5 = FakeMetaTrader5()
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10004, "No IPC connection")


def test_open_modify_close_round_trip():
    mt5 = FakeMetaTrader5()
    assert mt5.initialize()
    assert mt5.symbol_select("XAUUSD", True)
    req = {
        "action": 1,
        "symbol": "XAUUSD",
        "volume": 0.1,
        "type": 0,
        "price": 2400.2,
        "sl": 2390.0,
        "tp": 2420.0,
        "deviation": 20,
        "magic": 7,
        "comment": "t",
        "type_time": 0,
        "type_filling": 1,
    }
    res = mt5.order_send(req)
    assert res.retcode == 10009 and res.price == 2400.2 and res.volume == 0.1
    (pos,) = mt5.positions_get(symbol="XAUUSD")
    assert pos.ticket == res.order and pos.magic == 7
    mod = mt5.order_send(
        {"action": 6, "symbol": "XAUUSD", "position": pos.ticket, "sl": 2395.0, "tp": 2420.0}
    )
    assert mod.retcode == 10009
    same = mt5.order_send(
        {"action": 6, "symbol": "XAUUSD", "position": pos.ticket, "sl": 2395.0, "tp": 2420.0}
    )
    assert same.retcode == 10025
    mt5.set_tick(2410.0, 2410.2)
    close = mt5.order_send({**req, "type": 1, "price": 2410.0, "position": pos.ticket, "sl": 0.0, "tp": 0.0})
    assert close.retcode == 10009
    assert mt5.positions_get(symbol="XAUUSD") == ()
    out = mt5.history_deals_get(position=pos.ticket)
    assert [d.entry for d in out] == [0, 1]
    assert out[1].profit == round((2410.0 - 2400.2) * 100 * 0.1, 2)
    assert mt5.balance == 10_000.0 + out[1].profit


def test_strict_argument_types_like_the_bridge():
    mt5 = FakeMetaTrader5()
    mt5.initialize()
    assert mt5.order_send({"action": 1, "symbol": "XAUUSD", "volume": np.float64(0.1)}) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    assert mt5.order_send({"action": 1, "symbol": "XAUUSD", "volume": None}) is None
    assert mt5.positions_get("XAUUSD") is None
    assert mt5.last_error()[1] == "Unnamed arguments not allowed"


def test_scripted_outcomes_and_stop_triggers():
    mt5 = FakeMetaTrader5()
    mt5.initialize()
    mt5.symbol_select("XAUUSD")
    mt5.queue(10004, Outcome(error=(-10004, "No IPC connection"), drop=True))
    req = {
        "action": 1,
        "symbol": "XAUUSD",
        "volume": 0.01,
        "type": 1,
        "price": 2400.0,
        "sl": 2410.0,
        "tp": 2390.0,
        "magic": 9,
        "type_filling": 0,
    }
    assert mt5.order_send(req).retcode == 10004
    assert mt5.order_send(req) is None and not mt5.initialized
    mt5.initialize()
    assert mt5.order_send(req).retcode == 10009
    mt5.set_tick(2411.0, 2411.2)  # ask above the sell's SL
    deals = mt5.history_deals_get(0, 4_000_000_000)
    assert [d.reason for d in deals] == [3, 4] and deals[1].price == 2410.0 and deals[1].magic == 9
