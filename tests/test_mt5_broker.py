"""MT5Broker against the fake MetaTrader5 module: every protocol method, times, filling, retcodes, faults."""

from __future__ import annotations

import math
import sys
import threading
import types
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.fake_mt5 import FakeMetaTrader5, Outcome, TradeDeal
from trading.bars import MT5_RATES_DTYPE, to_mt5_rates
from trading.broker import mt5_constants as C
from trading.broker.base import (
    Broker,
    BrokerError,
    BrokerErrorKind,
    ConnectionLost,
    InvalidOrder,
    OrderRejected,
)
from trading.broker.mt5 import (
    MT5Broker,
    clean_comment,
    create_mt5_module,
    filling_candidates,
    widen_stops,
)
from trading.domain import DealEntry, DealReason, Side, SymbolSpec, Tick
from trading.timezones import ServerClock

SUMMER_SERVER = datetime(2026, 7, 1, 12, 0)  # fake's default tick time (server wall clock)
NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # NY+7 in July = UTC+3
MAGIC = 777


def server_epoch(naive: datetime) -> int:
    return int((naive - datetime(1970, 1, 1)).total_seconds())


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def mt5() -> FakeMetaTrader5:
    return FakeMetaTrader5()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_broker(mt5: FakeMetaTrader5, sleeps: Sleeps | None = None, **kw) -> MT5Broker:
    return MT5Broker(mt5, magic=MAGIC, sleep=sleeps or Sleeps(), now=lambda: NOW, **kw)


@pytest.fixture
async def broker(mt5: FakeMetaTrader5, sleeps: Sleeps) -> MT5Broker:
    b = make_broker(mt5, sleeps)
    await b.connect()
    return b


# ---- connection --------------------------------------------------------------------------------


async def test_connect_initializes_selects_symbol_and_checks_clock(mt5, sleeps):
    b = make_broker(mt5, sleeps, login=123, password="pw", server="Demo")
    assert isinstance(b, Broker)
    assert not b.connected
    await b.connect()
    assert b.connected
    init = next(c for c in mt5.calls if c[0] == "initialize")
    assert init[2]["login"] == 123 and init[2]["server"] == "Demo" and init[2]["timeout"] == 60_000
    assert "XAUUSD" in mt5.selected
    assert b.terminal is not None and b.terminal.connected
    assert b.clock_warning is None
    assert b.account_margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING


async def test_connect_warns_when_tick_clock_disagrees(mt5, sleeps):
    mt5.set_tick(2400.0, 2400.2, server_epoch=server_epoch(SUMMER_SERVER) - 3600)  # looks like UTC+2
    b = make_broker(mt5, sleeps)
    await b.connect()
    assert b.clock_warning is not None and "UTC+2" in b.clock_warning and "UTC+3" in b.clock_warning


async def test_initialize_retries_with_backoff_then_succeeds(mt5, sleeps):
    mt5.init_errors = [(-10005, "IPC timeout"), (-10003, "IPC initialize failed, terminal not found")]
    b = make_broker(mt5, sleeps)
    await b.connect()
    assert b.connected
    assert mt5.called("initialize") == 3
    assert sleeps.calls == [2.0, 4.0]


async def test_initialize_gives_up_after_three_attempts(mt5, sleeps):
    mt5.init_errors = [(-10005, "IPC timeout")] * 3
    b = make_broker(mt5, sleeps)
    with pytest.raises(ConnectionLost, match="after 3 attempts") as info:
        await b.connect()
    assert info.value.code == -10005
    assert not b.connected


async def test_auth_failure_is_config_and_not_retried(mt5, sleeps):
    mt5.init_errors = [(-6, "Terminal: Authorization failed")]
    b = make_broker(mt5, sleeps, login=1, password="bad", server="X")
    with pytest.raises(BrokerError, match="log in") as info:
        await b.connect()
    assert info.value.kind is BrokerErrorKind.CONFIG and info.value.code == -6
    assert mt5.called("initialize") == 1 and sleeps.calls == []


async def test_unknown_symbol_is_a_config_error(mt5, sleeps):
    b = MT5Broker(mt5, symbol="GOLD#", sleep=sleeps)
    with pytest.raises(BrokerError, match="GOLD#") as info:
        await b.connect()
    assert info.value.kind is BrokerErrorKind.CONFIG


async def test_reconnect_after_ipc_drop_on_a_read(broker, mt5):
    mt5.add_position(0, 0.1, 2390.0, magic=MAGIC)
    mt5.drop_connection()
    positions = await broker.positions()
    assert len(positions) == 1
    assert mt5.called("initialize") == 2 and mt5.called("shutdown") == 1
    assert broker.reconnects == 1 and broker.connected


async def test_bridge_transport_failure_rebuilds_the_client(mt5, sleeps):
    replacement = FakeMetaTrader5()
    replacement.add_position(1, 0.2, 2410.0, magic=MAGIC)
    b = make_broker(mt5, sleeps, mt5_factory=lambda: replacement)
    await b.connect()
    mt5.raise_on_call = EOFError("connection closed by peer")
    positions = await b.positions()
    assert [p.side for p in positions] == [Side.SELL]
    assert replacement.called("initialize") == 1


async def test_terminal_without_trade_server_is_not_reinitialized(broker, mt5):
    mt5.terminal_connected = False
    with pytest.raises(ConnectionLost, match="no connection to the trade server"):
        await broker.ensure_connected()
    assert mt5.called("initialize") == 1


async def test_hung_call_times_out(mt5, sleeps):
    b = make_broker(mt5, sleeps, call_timeout=0.05)
    await b.connect()
    release = threading.Event()
    original = mt5.account_info

    def hang():
        release.wait(2)
        return original()

    mt5.account_info = hang
    try:
        with pytest.raises(BrokerError) as info:
            await b.account()
        assert info.value.kind is BrokerErrorKind.TIMEOUT
        assert not b.connected
    finally:
        release.set()


async def test_disconnect_shuts_down(broker, mt5):
    await broker.disconnect()
    assert not broker.connected and not mt5.initialized


# ---- market data and account --------------------------------------------------------------------


async def test_account_maps_fields(broker, mt5):
    acc = await broker.account()
    assert acc.login == mt5.login_id and acc.balance == 10_000.0 and acc.free_margin == 10_000.0
    assert acc.currency == "USD" and acc.leverage == 100 and acc.server == "FakeBroker-Demo"
    assert acc.trade_allowed


async def test_symbol_spec_maps_fields(broker, mt5):
    mt5.symbols["XAUUSD"].update(trade_stops_level=30, volume_max=50.0, filling_mode=1)
    spec = await broker.symbol_spec()
    assert spec == SymbolSpec(
        name="XAUUSD",
        contract_size=100.0,
        point=0.01,
        digits=2,
        tick_size=0.01,
        tick_value=1.0,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=50.0,
        stops_level=30,
        freeze_level=0,
        filling_modes=1,
        trade_mode=4,
    )


@pytest.mark.parametrize(
    ("server", "utc"),
    [
        (datetime(2026, 7, 1, 12, 0, 0, 250_000), datetime(2026, 7, 1, 9, 0, 0, 250_000, tzinfo=UTC)),
        (datetime(2026, 1, 15, 12, 0), datetime(2026, 1, 15, 10, 0, tzinfo=UTC)),
    ],
)
async def test_tick_time_is_converted_from_server_clock(broker, mt5, server, utc):
    mt5.set_tick(2401.5, 2401.8, server_epoch=(server - datetime(1970, 1, 1)).total_seconds())
    tick = await broker.tick()
    assert tick == Tick(time=utc, bid=2401.5, ask=2401.8)


async def test_fixed_offset_clock(mt5, sleeps):
    b = MT5Broker(mt5, magic=MAGIC, server_clock=ServerClock.parse("UTC+2"), sleep=sleeps, now=lambda: NOW)
    await b.connect()
    assert (await b.tick()).time == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


async def test_bars_hand_made_rates(broker, mt5):
    rates = np.zeros(3, dtype=MT5_RATES_DTYPE)
    start = server_epoch(datetime(2026, 7, 1, 11, 15))
    rates["time"] = [start, start + 900, start + 1800]
    rates["open"], rates["high"], rates["low"], rates["close"] = (
        [2400.0, 2401.0, 2402.0],
        [2402.0, 2403.0, 2404.0],
        [2399.0, 2400.0, 2401.0],
        [2401.0, 2402.0, 2403.0],
    )
    rates["tick_volume"], rates["spread"] = [10, 20, 30], [15, 16, 17]
    mt5.rates[("XAUUSD", 15)] = rates
    frame = await broker.bars(2)
    assert frame.height == 2
    assert frame["time"].to_list() == [
        datetime(2026, 7, 1, 8, 30, tzinfo=UTC),
        datetime(2026, 7, 1, 8, 45, tzinfo=UTC),
    ]
    assert frame["close"].to_list() == [2402.0, 2403.0] and frame["spread"].to_list() == [16, 17]
    assert mt5.calls[-1][:2] == ("copy_rates_from_pos", ("XAUUSD", 15, 0, 2))


async def test_bars_round_trip_real_data(broker, mt5, shared_bars):
    clock = ServerClock.parse("NY+7")
    tail = shared_bars.tail(300)
    mt5.rates[("XAUUSD", 15)] = to_mt5_rates(tail, clock)
    frame = await broker.bars(200)
    assert frame.equals(tail.tail(200))


async def test_bars_errors(broker, mt5):
    with pytest.raises(BrokerError) as info:
        await broker.bars(10)  # no history in the fake -> None + (-1, 'Terminal: Call failed')
    assert info.value.code == -1
    with pytest.raises(ValueError, match="7 minutes"):
        await broker.bars(10, timeframe_minutes=7)
    with pytest.raises(ValueError):
        await broker.bars(0)


async def test_positions_filtered_by_magic_and_converted(broker, mt5):
    mine = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC, sl=2380.0, tp=2420.0, comment="bot")
    mt5.add_position(1, 0.5, 2405.0, magic=0)  # a manual trade
    (pos,) = await broker.positions()
    assert pos.ticket == mine and pos.side is Side.BUY and pos.volume == 0.1 and pos.open_price == 2390.0
    assert (pos.sl, pos.tp, pos.comment, pos.magic) == (2380.0, 2420.0, "bot", MAGIC)
    assert pos.open_time == NOW
    assert pos.current_price == 2400.0 and math.isclose(pos.profit, 100.0)


async def test_no_positions_is_an_empty_list(broker):
    assert await broker.positions() == []


# ---- opening ------------------------------------------------------------------------------------


async def test_open_market_buy_request_and_result(broker, mt5):
    res = await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0, comment="smc long")
    (req,) = mt5.sent
    assert req == {
        "action": 1,
        "symbol": "XAUUSD",
        "volume": 0.1,
        "type": 0,
        "price": 2400.2,
        "sl": 2390.0,
        "tp": 2420.0,
        "deviation": 20,
        "magic": MAGIC,
        "comment": "smc long",
        "type_time": 0,
        "type_filling": 1,
    }
    assert res.side is Side.BUY and res.volume == 0.1 and res.price == 2400.2 and res.time == NOW
    assert res.ticket == res.order and res.deal > 0 and not res.partial
    (pos,) = await broker.positions()
    assert pos.ticket == res.ticket


async def test_open_market_sell_uses_bid_and_rounds_stops(broker, mt5):
    res = await broker.open_market(Side.SELL, np.float64(0.03), np.float64(2410.004), 2380.0)
    req = mt5.sent[0]
    assert (
        req["type"] == 1 and req["price"] == 2400.0 and req["sl"] == 2410.0 and type(req["volume"]) is float
    )
    assert res.side is Side.SELL and res.price == 2400.0


async def test_partial_fill_is_reported(broker, mt5):
    mt5.queue(Outcome(fill_volume=0.05))
    res = await broker.open_market(Side.BUY, 0.1, 0.0, 0.0)
    assert res.volume == 0.05 and res.requested_volume == 0.1 and res.partial


@pytest.mark.parametrize(
    ("mask", "exemode", "expected"),
    [
        (1, 2, (0,)),  # FOK only
        (2, 2, (1,)),  # IOC only
        (3, 2, (1, 0)),  # both: IOC first
        (0, 2, (2,)),  # neither declared: RETURN
        (1, 3, (0, 2)),  # exchange execution also allows RETURN
    ],
)
def test_filling_candidates(mask, exemode, expected):
    assert filling_candidates(mask, exemode) == expected


@pytest.mark.parametrize(("mask", "sent"), [(1, 0), (2, 1), (3, 1)])
async def test_open_uses_the_symbols_filling_mode(broker, mt5, mask, sent):
    mt5.symbols["XAUUSD"]["filling_mode"] = mask
    await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
    assert mt5.sent[-1]["type_filling"] == sent


async def test_unsupported_filling_falls_back_and_is_remembered(broker, mt5):
    mt5.queue(C.TRADE_RETCODE_INVALID_FILL)
    await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
    assert [r["type_filling"] for r in mt5.sent] == [1, 0]
    (pos,) = await broker.positions()
    await broker.close_position(pos.ticket)
    assert mt5.sent[-1]["type_filling"] == 0  # the winner is used for closes too


@pytest.mark.parametrize(
    ("retcode", "kind"),
    [
        (10006, BrokerErrorKind.REJECTED),
        (10013, BrokerErrorKind.INVALID_REQUEST),
        (10014, BrokerErrorKind.INVALID_VOLUME),
        (10016, BrokerErrorKind.INVALID_STOPS),
        (10017, BrokerErrorKind.TRADE_DISABLED),
        (10018, BrokerErrorKind.MARKET_CLOSED),
        (10019, BrokerErrorKind.NO_MONEY),
        (10027, BrokerErrorKind.TRADE_DISABLED),
        (10040, BrokerErrorKind.REJECTED),
    ],
)
async def test_retcodes_map_to_typed_errors_without_retry(broker, mt5, retcode, kind):
    mt5.queue(retcode)
    with pytest.raises(OrderRejected) as info:
        await broker.open_market(Side.BUY, 0.01, 2300.0, 2500.0)  # far stops: widening changes nothing
    err = info.value
    assert err.kind is kind and err.code == retcode
    assert C.RETCODES[retcode][1] in str(err)
    assert mt5.called("order_send") == 1
    assert await broker.positions() == []


async def test_real_server_checks_market_closed_and_no_money(broker, mt5):
    mt5.market_closed = True
    with pytest.raises(OrderRejected) as closed:
        await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
    assert closed.value.kind is BrokerErrorKind.MARKET_CLOSED and "market is closed" in str(closed.value)
    mt5.market_closed = False
    with pytest.raises(OrderRejected) as money:
        await broker.open_market(Side.BUY, 5.0, 0.0, 0.0)  # 5 lots needs 12,001 USD margin at 1:100
    assert money.value.kind is BrokerErrorKind.NO_MONEY and money.value.code == 10019


async def test_requote_retries_once_with_a_fresh_price(broker, mt5):
    mt5.queue(Outcome(retcode=10004, move_to=(2401.0, 2401.2)))
    res = await broker.open_market(Side.BUY, 0.01, 2390.0, 2420.0)
    assert [r["price"] for r in mt5.sent] == [2400.2, 2401.2]
    assert res.price == 2401.2


async def test_second_requote_gives_up(broker, mt5):
    mt5.queue(10004, 10020)
    with pytest.raises(OrderRejected) as info:
        await broker.open_market(Side.BUY, 0.01, 2390.0, 2420.0)
    assert info.value.kind is BrokerErrorKind.REQUOTE and info.value.code == 10020
    assert mt5.called("order_send") == 2


async def test_invalid_stops_are_widened_once_and_reported(broker, mt5):
    mt5.queue(10016)
    res = await broker.open_market(Side.BUY, 0.1, 2399.9, 0.0)
    # bid 2400.00, spread 0.20, stops level 0 -> SL at least 0.21 below the bid
    assert [r["sl"] for r in mt5.sent] == [2399.9, 2399.79]
    # 0.1 lot over 0.30 risked $3.00; over 0.41 the same money buys 0.073 -> 0.07 lot
    assert [r["volume"] for r in mt5.sent] == [0.1, 0.07]
    (pos,) = await broker.positions()
    assert pos.ticket == res.ticket and pos.sl == 2399.79
    assert (res.sl, res.tp, res.volume) == (2399.79, 0.0, 0.07)


def test_widen_stops_sell_side():
    spec = SymbolSpec(stops_level=30)
    tick = Tick(NOW, 2400.0, 2400.2)
    assert widen_stops(spec, Side.SELL, tick, 2400.3, 2399.0) == (
        2400.71,
        2399.0,
    )  # ask 2400.20 + (30 + 1) points + 0.20 spread
    assert widen_stops(spec, Side.SELL, tick, 2410.0, 2399.0) == (2410.0, 2399.0)


async def test_open_with_no_ipc_result_none_reads_last_error(broker, mt5):
    mt5.queue(Outcome(error=(-2, 'Invalid "comment" argument')))
    with pytest.raises(OrderRejected, match="comment") as info:
        await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
    assert info.value.kind is BrokerErrorKind.INVALID_REQUEST and info.value.code == -2


async def test_connection_drop_after_execution_is_reconciled_not_resent(broker, mt5):
    mt5.queue(Outcome(execute=True, error=(-10004, "No IPC connection"), drop=True))
    res = await broker.open_market(Side.BUY, 0.02, 0.0, 0.0)
    assert mt5.called("order_send") == 1
    (pos,) = await broker.positions()
    assert res.ticket == pos.ticket and res.volume == 0.02 and res.price == 2400.2
    assert broker.reconnects == 1


async def test_connection_drop_before_execution_raises_connection_lost(broker, mt5):
    mt5.queue(Outcome(error=(-10004, "No IPC connection"), drop=True))
    with pytest.raises(ConnectionLost) as info:
        await broker.open_market(Side.BUY, 0.02, 0.0, 0.0)
    assert info.value.code == -10004
    assert mt5.called("order_send") == 1 and await broker.positions() == []


async def test_no_trade_server_connection_retcode(broker, mt5):
    mt5.queue(10031)
    with pytest.raises(ConnectionLost) as info:
        await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
    assert info.value.code == 10031 and mt5.called("order_send") == 1


async def test_timeout_retcode_reconciles(broker, mt5):
    mt5.queue(Outcome(retcode=10012, execute=True), 10012)
    res = await broker.open_market(Side.SELL, 0.01, 0.0, 0.0)
    assert len(await broker.positions()) == 1 and res.side is Side.SELL
    with pytest.raises(BrokerError) as info:
        await broker.open_market(Side.SELL, 0.01, 0.0, 0.0)
    assert info.value.kind is BrokerErrorKind.TIMEOUT and info.value.code == 10012
    assert mt5.called("order_send") == 2 and len(await broker.positions()) == 1


@pytest.mark.parametrize(
    ("side", "volume", "sl", "tp", "match"),
    [
        (Side.BUY, 0.0, 0.0, 0.0, "volume must be positive"),
        (Side.BUY, 0.001, 0.0, 0.0, "below the minimum"),
        (Side.BUY, 150.0, 0.0, 0.0, "above the maximum"),
        (Side.BUY, 0.01, float("nan"), 0.0, "sl must be a finite"),
        (Side.BUY, 0.01, 2401.0, 0.0, "stop loss 2401.00 must be below"),
        (
            Side.BUY,
            0.01,
            2400.1,
            0.0,
            "stop loss 2400.10 must be below the price 2400.00",
        ),  # inside the spread
        (Side.SELL, 0.01, 0.0, 2401.0, "take profit 2401.00 must be below"),
        (Side.SELL, 0.01, -5.0, 0.0, "sl and tp must be positive"),
    ],
)
async def test_invalid_orders_send_nothing(broker, mt5, side, volume, sl, tp, match):
    with pytest.raises(InvalidOrder, match=match):
        await broker.open_market(side, volume, sl, tp)
    assert mt5.called("order_send") == 0


async def test_stops_level_is_enforced_before_sending(broker, mt5):
    mt5.symbols["XAUUSD"]["trade_stops_level"] = 50
    with pytest.raises(InvalidOrder, match="by more than 0.50"):
        await broker.open_market(Side.BUY, 0.01, 2399.7, 0.0)
    assert mt5.called("order_send") == 0


async def test_trade_mode_close_only_refuses_opens(broker, mt5):
    mt5.symbols["XAUUSD"]["trade_mode"] = C.SYMBOL_TRADE_MODE_CLOSEONLY
    with pytest.raises(OrderRejected, match="closing positions only") as info:
        await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
    assert info.value.kind is BrokerErrorKind.TRADE_DISABLED and mt5.called("order_send") == 0


def test_clean_comment():
    assert clean_comment("sl\tmove é 1") == "slmove  1"
    assert clean_comment("x" * 40) == "x" * 25
    assert clean_comment("ok\u00e9") == "ok"


# ---- closing and modifying ------------------------------------------------------------------------


async def test_close_full_position(broker, mt5):
    opened = await broker.open_market(Side.BUY, 0.1, 0.0, 0.0)
    mt5.set_tick(2410.0, 2410.3)
    res = await broker.close_position(opened.ticket, comment="take profit")
    req = mt5.sent[-1]
    assert req["action"] == 1 and req["type"] == 1 and req["position"] == opened.ticket
    assert req["price"] == 2410.0 and req["volume"] == 0.1 and "sl" not in req
    assert res.ticket == opened.ticket and res.side is Side.SELL and res.price == 2410.0 and res.volume == 0.1
    assert await broker.positions() == []
    assert math.isclose(mt5.balance, 10_000.0 + (2410.0 - 2400.2) * 100 * 0.1)


async def test_close_part_of_a_sell(broker, mt5):
    opened = await broker.open_market(Side.SELL, 0.1, 0.0, 0.0)
    res = await broker.close_position(opened.ticket, 0.04)
    assert mt5.sent[-1]["type"] == 0 and mt5.sent[-1]["price"] == 2400.2
    assert res.volume == 0.04 and res.side is Side.BUY
    (pos,) = await broker.positions()
    assert math.isclose(pos.volume, 0.06)


@pytest.mark.parametrize(
    ("volume", "match"), [(0.2, "more than the position"), (-1.0, "positive"), (0.001, "minimum")]
)
async def test_bad_close_volume_sends_nothing(broker, mt5, volume, match):
    ticket = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC)
    with pytest.raises(InvalidOrder, match=match):
        await broker.close_position(ticket, volume)
    assert mt5.called("order_send") == 0


async def test_close_refuses_unknown_and_foreign_positions(broker, mt5):
    manual = mt5.add_position(0, 0.1, 2390.0, magic=0)
    with pytest.raises(OrderRejected, match="magic 0") as foreign:
        await broker.close_position(manual)
    assert foreign.value.kind is BrokerErrorKind.NOT_FOUND
    with pytest.raises(OrderRejected, match="ticket 42") as missing:
        await broker.close_position(42)
    assert missing.value.kind is BrokerErrorKind.NOT_FOUND
    assert mt5.called("order_send") == 0


async def test_close_of_an_already_closed_position_returns_its_closing_deal(broker, mt5):
    ticket = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC)
    mt5.queue(Outcome(retcode=10036, execute=True))  # closed (e.g. SL hit) as our request arrived
    res = await broker.close_position(ticket)
    assert res.ticket == ticket and res.price == 2400.0 and res.side is Side.SELL
    assert mt5.called("order_send") == 1


async def test_close_requote_retries_with_fresh_price(broker, mt5):
    ticket = mt5.add_position(1, 0.1, 2410.0, magic=MAGIC)
    mt5.queue(Outcome(retcode=10004, move_to=(2399.0, 2399.3)))
    res = await broker.close_position(ticket)
    assert [r["price"] for r in mt5.sent] == [2400.2, 2399.3] and res.price == 2399.3


async def test_close_market_closed(broker, mt5):
    ticket = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC)
    mt5.market_closed = True
    with pytest.raises(OrderRejected) as info:
        await broker.close_position(ticket)
    assert info.value.kind is BrokerErrorKind.MARKET_CLOSED
    assert len(await broker.positions()) == 1


async def test_modify_sets_sl_tp(broker, mt5):
    ticket = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC, sl=2380.0, tp=2420.0)
    await broker.modify_position(ticket, 2395.004, 2425.0)
    assert mt5.sent[-1] == {
        "action": 6,
        "symbol": "XAUUSD",
        "position": ticket,
        "sl": 2395.0,
        "tp": 2425.0,
        "magic": MAGIC,
    }
    (pos,) = await broker.positions()
    assert (pos.sl, pos.tp) == (2395.0, 2425.0)
    await broker.modify_position(ticket, 2395.0, 2425.0)  # 10025 no changes: fine
    assert mt5.called("order_send") == 2


async def test_modify_validation_and_retcodes(broker, mt5):
    ticket = mt5.add_position(1, 0.1, 2410.0, magic=MAGIC, sl=2420.0)
    with pytest.raises(InvalidOrder, match="stop loss 2400.10 must be above the price 2400.20"):
        await broker.modify_position(ticket, 2400.1, 0.0)
    assert mt5.called("order_send") == 0
    mt5.queue(10016)
    with pytest.raises(OrderRejected) as info:
        await broker.modify_position(ticket, 2405.0, 0.0)
    assert info.value.kind is BrokerErrorKind.INVALID_STOPS
    mt5.queue(10029)
    with pytest.raises(OrderRejected, match="freeze level"):
        await broker.modify_position(ticket, 2405.0, 0.0)


async def test_modify_timeout_that_applied_is_fine(broker, mt5):
    ticket = mt5.add_position(0, 0.1, 2390.0, magic=MAGIC)
    mt5.queue(Outcome(retcode=10012, execute=True))
    await broker.modify_position(ticket, 2385.0, 0.0)
    mt5.queue(10012)
    with pytest.raises(BrokerError) as info:
        await broker.modify_position(ticket, 2386.0, 0.0)
    assert info.value.kind is BrokerErrorKind.TIMEOUT


# ---- deals ----------------------------------------------------------------------------------------


async def test_deals_since_maps_sl_and_tp_hits(broker, mt5):
    t0 = server_epoch(SUMMER_SERVER)
    long = await broker.open_market(Side.BUY, 0.1, 2390.0, 2420.0)
    short = await broker.open_market(Side.SELL, 0.05, 2410.0, 2380.0)
    mt5.add_position(0, 1.0, 2400.0, magic=0, sl=2399.0)  # manual trade, also stopped out below
    mt5.set_tick(2389.5, 2389.7, server_epoch=t0 + 600)  # long SL and manual SL hit
    mt5.set_tick(2379.0, 2379.2, server_epoch=t0 + 1200)  # short TP hit
    mt5.deals.append(
        TradeDeal(1, 0, t0, t0 * 1000, 2, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 500.0, 0.0, "", "dep", "")
    )
    deals = await broker.deals_since(NOW - timedelta(minutes=1))
    assert [(d.position_ticket, d.entry, d.reason) for d in deals] == [
        (long.ticket, DealEntry.IN, DealReason.CLIENT),
        (short.ticket, DealEntry.IN, DealReason.CLIENT),
        (long.ticket, DealEntry.OUT, DealReason.SL),
        (short.ticket, DealEntry.OUT, DealReason.TP),
    ]
    sl_out, tp_out = deals[2], deals[3]
    assert sl_out.side is Side.SELL and sl_out.price == 2390.0 and sl_out.time == NOW + timedelta(minutes=10)
    assert math.isclose(sl_out.profit, (2390.0 - 2400.2) * 100 * 0.1)
    assert (
        tp_out.side is Side.BUY and tp_out.price == 2380.0 and math.isclose(tp_out.net, (2400.0 - 2380.0) * 5)
    )
    later = await broker.deals_since(NOW + timedelta(minutes=15))
    assert [d.reason for d in later] == [DealReason.TP]
    args = next(c for c in reversed(mt5.calls) if c[0] == "history_deals_get")[1]
    assert all(type(a) is int for a in args)


async def test_deals_since_needs_aware_time(broker):
    with pytest.raises(ValueError, match="aware"):
        await broker.deals_since(datetime(2026, 7, 1))


async def test_empty_history_is_an_empty_list(broker):
    assert await broker.deals_since(NOW) == []


# ---- module factory -------------------------------------------------------------------------------


def test_create_mt5_module_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)
    with pytest.raises(BrokerError, match=r"pip install '\.\[mt5\]' on Windows") as info:
        create_mt5_module("mt5")
    assert info.value.kind is BrokerErrorKind.CONFIG


def test_create_mt5_module_real_package_is_returned(monkeypatch):
    fake = types.ModuleType("MetaTrader5")
    monkeypatch.setitem(sys.modules, "MetaTrader5", fake)
    assert create_mt5_module("mt5") is fake


def test_create_mt5linux_client(monkeypatch):
    module = types.ModuleType("mt5linux")

    class Client:
        def __init__(self, host: str, port: int) -> None:
            if port == 1:
                raise ConnectionRefusedError(111, "Connection refused")
            self.host, self.port = host, port

    module.MetaTrader5 = Client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mt5linux", module)
    client = create_mt5_module("mt5linux", port=8001)
    assert (client.host, client.port) == ("127.0.0.1", 8001)
    with pytest.raises(ConnectionLost, match="no mt5linux bridge answers at 127.0.0.1:1"):
        create_mt5_module("mt5linux", port=1)
    monkeypatch.setitem(sys.modules, "mt5linux", None)
    with pytest.raises(BrokerError, match=r"pip install '\.\[mt5linux\]'"):
        create_mt5_module("mt5linux")
    with pytest.raises(ValueError, match="unknown MT5 connection kind"):
        create_mt5_module("ctrader")


# ---- the retcode table ----------------------------------------------------------------------------


@pytest.mark.parametrize("retcode", sorted(set(C.RETCODES) - C.SUCCESS_RETCODES))
def test_every_failure_retcode_has_a_typed_error(retcode):
    from trading.broker.mt5 import retcode_error

    err = retcode_error(retcode, "server words", "open BUY 0.01 XAUUSD")
    kind, text = C.RETCODES[retcode]
    assert err.kind is kind and err.code == retcode
    assert text in str(err) and "server words" in str(err) and "open BUY" in str(err)
    if retcode == C.TRADE_RETCODE_CONNECTION:
        assert isinstance(err, ConnectionLost)
    elif retcode == C.TRADE_RETCODE_TIMEOUT:
        assert not isinstance(err, OrderRejected)
    else:
        assert isinstance(err, OrderRejected)


def test_unknown_retcode_and_last_error_classes():
    assert C.describe_retcode(10099)[0] is BrokerErrorKind.REJECTED
    assert C.describe_last_error(-10004, "No IPC connection")[0] is BrokerErrorKind.DISCONNECTED
    assert C.describe_last_error(-8)[0] is BrokerErrorKind.CONFIG
    assert C.describe_last_error(-2, 'Invalid "volume" argument')[0] is BrokerErrorKind.INVALID_REQUEST
    assert C.describe_last_error(-4)[0] is BrokerErrorKind.NOT_FOUND
