"""Paper broker: fills, costs, margin, partial closes, SL/TP on ticks and bars, validation,
persistence across a restart, broker-side deals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.broker.base import (
    Broker,
    BrokerError,
    BrokerErrorKind,
    ConnectionLost,
    InvalidOrder,
    OrderRejected,
)
from trading.broker.paper import PaperBroker, PaperConfig
from trading.domain import DealEntry, DealReason, Side, Tick

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def tick(bid: float, ask: float | None = None, minutes: float = 0.0) -> Tick:
    return Tick(T0 + timedelta(minutes=minutes), bid, round(bid + 0.20, 2) if ask is None else ask)


def bar(minutes: int, o: float, h: float, lo: float, c: float, spread: int = 20) -> dict:
    return {
        "time": T0 + timedelta(minutes=minutes),
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "tick_volume": 100,
        "spread": spread,
        "real_volume": 0,
    }


async def make(**settings_) -> PaperBroker:
    broker = PaperBroker(**settings_)
    await broker.connect()
    broker.set_tick(tick(2000.00))  # bid 2000.00 / ask 2000.20
    return broker


async def test_is_a_broker_with_xauusd_spec() -> None:
    broker = await make()
    assert isinstance(broker, Broker)
    spec = await broker.symbol_spec()
    assert (spec.contract_size, spec.point, spec.digits, spec.volume_min, spec.volume_step) == (
        100.0,
        0.01,
        2,
        0.01,
        0.01,
    )
    assert spec.volume_max == 50.0
    account = await broker.account()
    assert (account.balance, account.equity, account.margin, account.free_margin) == (
        10_000,
        10_000,
        0,
        10_000,
    )
    assert account.currency == "USD" and account.leverage == 100


async def test_fills_at_ask_and_bid_with_adverse_slippage() -> None:
    broker = await make()
    buy = await broker.open_market(Side.BUY, 0.10, 1990.0, 2010.0)
    sell = await broker.open_market(Side.SELL, 0.10, 2010.0, 1990.0)
    assert (buy.price, sell.price) == (2000.20, 2000.00)
    # floating P/L right after opening is minus the spread: 0.20 x 100 oz x 0.1 lot = 2.00 each
    assert broker.floating_pl() == -4.00

    slipped = await make(slippage_points=5)
    assert (await slipped.open_market(Side.BUY, 0.10, 1990.0, 2010.0)).price == 2000.25
    assert (await slipped.open_market(Side.SELL, 0.10, 2010.0, 1990.0)).price == 1999.95
    close = await slipped.close_position(1)  # BUY closes at bid 2000.00 minus 5 points
    assert close.price == 1999.95 and close.side is Side.SELL


async def test_volume_snapped_and_result_fields() -> None:
    broker = await make()
    result = await broker.open_market(Side.BUY, 0.157, 1990.0, 2010.0, comment="smc")
    assert result.volume == 0.15 and not result.partial
    assert result.ticket == 1 and result.order == 1 and result.deal == 1  # deals have their own sequence
    (pos,) = await broker.positions()
    assert (pos.ticket, pos.side, pos.volume, pos.open_price, pos.sl, pos.tp) == (
        1,
        Side.BUY,
        0.15,
        2000.20,
        1990.0,
        2010.0,
    )
    assert pos.magic == 123456 and pos.comment == "smc" and pos.open_time == T0
    assert pos.current_price == 2000.00 and pos.profit == -3.00


async def test_equity_margin_and_commission() -> None:
    broker = await make(commission_per_lot=3.5)
    await broker.open_market(Side.BUY, 1.00, 1990.0, 2010.0)
    broker.set_tick(tick(2001.20, minutes=1))
    account = await broker.account()
    assert account.balance == 9_996.50  # entry commission booked at once
    assert account.floating_pl == pytest.approx(100.00)  # (2001.20 - 2000.20) x 100 oz
    assert account.equity == 10_096.50
    assert account.margin == 2_000.20  # 1 lot x 100 oz x 2000.20 / 100
    assert account.free_margin == 8_096.30
    close = await broker.close_position(1)
    assert close.price == 2001.20
    deals = await broker.deals_since(T0)
    assert [(d.entry, d.commission, d.profit) for d in deals] == [
        (DealEntry.IN, -3.5, 0.0),
        (DealEntry.OUT, -3.5, 100.0),
    ]
    assert (await broker.account()).balance == 10_093.00


async def test_margin_refusal_changes_nothing() -> None:
    broker = await make(balance=1_000.0)
    with pytest.raises(OrderRejected) as err:
        await broker.open_market(Side.BUY, 1.00, 1990.0, 2010.0)
    assert err.value.kind is BrokerErrorKind.NO_MONEY and err.value.code == 10019
    assert "need 2000.20 USD margin" in str(err.value) and "free margin is 1000.00 USD" in str(err.value)
    assert await broker.positions() == [] and await broker.deals_since(T0) == []
    assert (await broker.account()).balance == 1_000.0
    assert (await broker.open_market(Side.BUY, 0.40, 1990.0, 2010.0)).ticket == 1  # counter untouched


async def test_partial_close_pl() -> None:
    broker = await make()
    await broker.open_market(Side.BUY, 0.30, 1990.0, 2010.0)
    broker.set_tick(tick(2002.20, minutes=1))
    part = await broker.close_position(1, 0.10)
    assert part.volume == 0.10 and part.price == 2002.20
    (pos,) = await broker.positions()
    assert pos.volume == 0.20 and pos.ticket == 1
    assert broker.balance == 10_020.00  # 2.00 x 100 x 0.10
    broker.set_tick(tick(1999.20, minutes=2))
    await broker.close_position(1)
    assert await broker.positions() == []
    assert broker.balance == 10_000.00  # -1.00 x 100 x 0.20 = -20
    outs = [d for d in await broker.deals_since(T0) if d.entry is DealEntry.OUT]
    assert [(d.volume, d.profit, d.reason) for d in outs] == [
        (0.1, 20.0, DealReason.CLIENT),
        (0.2, -20.0, DealReason.CLIENT),
    ]


async def test_close_errors() -> None:
    broker = await make()
    await broker.open_market(Side.BUY, 0.10, 1990.0, 2010.0)
    with pytest.raises(OrderRejected) as err:
        await broker.close_position(99)
    assert err.value.kind is BrokerErrorKind.NOT_FOUND
    with pytest.raises(InvalidOrder, match="more than the position"):
        await broker.close_position(1, 0.2)
    with pytest.raises(InvalidOrder, match="below the minimum"):
        await broker.close_position(1, 0.004)
    with pytest.raises(InvalidOrder, match="positive number"):
        await broker.close_position(1, float("nan"))
    assert (await broker.positions())[0].volume == 0.10


async def test_sl_and_tp_on_ticks_with_gap_price() -> None:
    broker = await make()
    await broker.open_market(Side.BUY, 0.10, 1999.00, 2002.00)
    await broker.open_market(Side.SELL, 0.10, 2003.00, 1998.00)
    assert broker.set_tick(tick(1999.50, minutes=1)) == []
    # BUY: bid jumps to 1998.50 past the SL 1999.00 -> filled at the gap price 1998.50
    (sl_deal,) = await broker.update(tick(1998.50, minutes=2))
    assert (sl_deal.reason, sl_deal.price, sl_deal.position_ticket, sl_deal.side) == (
        DealReason.SL,
        1998.50,
        1,
        Side.SELL,
    )
    assert sl_deal.profit == -17.00  # (1998.50 - 2000.20) x 10
    # SELL closes at the ask: ask 1998.10 has not reached TP 1998.00 yet
    assert broker.set_tick(tick(1997.90, 1998.10, minutes=3)) == []
    (tp_deal,) = broker.set_tick(tick(1997.80, 1998.00, minutes=4))
    assert (tp_deal.reason, tp_deal.price, tp_deal.profit) == (DealReason.TP, 1998.00, 20.00)
    assert await broker.positions() == []
    assert broker.balance == 10_003.00


async def test_sl_tp_within_bars() -> None:
    broker = await make()
    await broker.open_market(Side.BUY, 0.10, 1998.00, 2001.00)  # ticket 1
    await broker.open_market(Side.BUY, 0.10, 1995.00, 2005.00)  # ticket 2
    # the bar touches TP 2001 first on the path and then SL 1998: the SL wins
    deals = await broker.update_bar(bar(15, 2000.00, 2001.50, 1997.00, 1999.00))
    assert [(d.position_ticket, d.reason, d.price) for d in deals] == [(1, DealReason.SL, 1998.00)]
    assert deals[0].time == T0 + timedelta(minutes=15) + timedelta(minutes=15) * (5.0 / 8.0)
    # the price is left at the bar's close, ask = close + bar spread
    assert await broker.tick() == Tick(T0 + timedelta(minutes=30, seconds=-1), 1999.00, 1999.20)
    # a gap down through SL 1995 fills at the open 1990.00
    (gap,) = await broker.update_bar(bar(30, 1990.00, 1991.00, 1989.00, 1990.50))
    assert (gap.position_ticket, gap.reason, gap.price, gap.time) == (
        2,
        DealReason.SL,
        1990.00,
        T0 + timedelta(minutes=30),
    )
    assert gap.profit == -102.00
    # an old bar is ignored
    assert await broker.update_bar(bar(15, 2000.0, 2001.0, 1999.0, 2000.0)) == []
    frame = await broker.bars(10)
    assert frame.height == 2 and frame["close"].to_list() == [1999.00, 1990.50]


async def test_sell_in_bar_uses_spread() -> None:
    broker = await make()
    await broker.open_market(Side.SELL, 0.10, 2003.00, 1990.00)
    # bid high 2002.90 plus spread 0.20 = ask 2003.10 reaches SL 2003.00
    (deal,) = await broker.update_bar(bar(15, 2000.0, 2002.90, 1999.0, 2001.0, spread=20))
    assert (deal.reason, deal.price) == (DealReason.SL, 2003.00)


async def test_modify_validation_changes_nothing() -> None:
    broker = await make(stops_level=50)  # 0.50 minimum distance
    await broker.open_market(Side.BUY, 0.10, 1990.0, 2010.0)
    await broker.modify_position(1, 1995.0, 2008.0)
    bad = [
        (2000.10, 2008.0, "stop loss 2000.10 must be below the price 2000.00"),
        (1999.70, 2008.0, "by more than 0.50"),
        (1995.0, 1999.0, "take profit 1999.00 must be above"),
        (float("inf"), 2008.0, "finite"),
        (-1.0, 2008.0, "positive prices"),
    ]
    for sl, tp, message in bad:
        with pytest.raises(InvalidOrder, match=message):
            await broker.modify_position(1, sl, tp)
    (pos,) = await broker.positions()
    assert (pos.sl, pos.tp) == (1995.0, 2008.0)
    with pytest.raises(OrderRejected) as err:
        await broker.modify_position(42, 1995.0, 2008.0)
    assert err.value.kind is BrokerErrorKind.NOT_FOUND
    await broker.modify_position(1, 0.0, 0.0)  # remove both
    (pos,) = await broker.positions()
    assert (pos.sl, pos.tp) == (0.0, 0.0)


async def test_open_validation_and_market_closed() -> None:
    broker = await make()
    for side, volume, sl, tp, message in [
        (Side.BUY, 0.0, 1990.0, 2010.0, "volume must be positive"),
        (Side.BUY, 0.001, 1990.0, 2010.0, "below the minimum"),
        (Side.BUY, 51.0, 1990.0, 2010.0, "above the maximum"),
        (Side.BUY, 0.1, 2000.10, 2010.0, "stop loss 2000.10 must be below the price 2000.00"),
        (Side.SELL, 0.1, 2000.10, 1990.0, "stop loss 2000.10 must be above the price 2000.20"),
        (Side.SELL, 0.1, 2010.0, 2000.10, "take profit 2000.10 must be below"),
    ]:
        with pytest.raises(InvalidOrder, match=message):
            await broker.open_market(side, volume, sl, tp)
    with pytest.raises(InvalidOrder, match="side"):
        await broker.open_market("BUY", 0.1, 1990.0, 2010.0)  # type: ignore[arg-type]
    assert await broker.positions() == [] and broker.to_state()["next_ticket"] == 1

    fresh = PaperBroker()
    with pytest.raises(ConnectionLost):
        await fresh.tick()
    await fresh.connect()
    with pytest.raises(OrderRejected) as err:
        await fresh.open_market(Side.BUY, 0.1, 1990.0, 2010.0)
    assert err.value.kind is BrokerErrorKind.MARKET_CLOSED and err.value.code == 10018
    with pytest.raises(OrderRejected, match="market is closed"):
        await fresh.tick()


async def test_stop_out_closes_worst_position() -> None:
    broker = await make(balance=1_000.0)
    await broker.open_market(Side.BUY, 0.40, 0.0, 0.0)  # margin 800.08
    assert broker.set_tick(tick(1985.30, minutes=1)) == []  # equity 404.00 -> 50.5 %
    (deal,) = broker.set_tick(tick(1985.20, minutes=2))  # equity 400.00 -> 49.99 %
    assert (deal.reason, deal.price, deal.profit) == (DealReason.STOP_OUT, 1985.20, -600.00)
    assert broker.balance == 400.00


async def test_deals_since_includes_broker_side_closes() -> None:
    broker = await make()
    await broker.open_market(Side.BUY, 0.10, 1999.00, 2005.00)
    broker.set_tick(tick(2003.00, minutes=5))
    await broker.close_position(1, 0.05)
    broker.set_tick(tick(1998.00, minutes=10))  # SL on the rest
    deals = await broker.deals_since(T0 + timedelta(minutes=1))
    assert [(d.reason, d.volume, d.time) for d in deals] == [
        (DealReason.CLIENT, 0.05, T0 + timedelta(minutes=5)),
        (DealReason.SL, 0.05, T0 + timedelta(minutes=10)),
    ]
    # the comment names the stop level, as MT5 does; a tick that jumps the stop fills at its own price
    assert deals[-1].comment == "[sl 1999.00]" and deals[-1].price == 1998.00 and deals[-1].magic == 123456
    assert await broker.deals_since(T0 + timedelta(minutes=11)) == []
    with pytest.raises(InvalidOrder, match="aware"):
        await broker.deals_since(datetime(2026, 1, 1))


async def test_state_survives_restart(tmp_path) -> None:
    path = tmp_path / "paper" / "account.json"
    broker = PaperBroker(state_path=path, commission_per_lot=2.0)
    await broker.connect()
    broker.set_tick(tick(2000.00))
    await broker.open_market(Side.BUY, 0.30, 1990.0, 2010.0, comment="a")
    await broker.open_market(Side.SELL, 0.10, 2010.0, 1990.0, comment="b")
    broker.set_tick(tick(2001.00, minutes=1))
    await broker.close_position(1, 0.10)
    await broker.modify_position(2, 2008.0, 1991.0)
    before = (broker.balance, await broker.positions(), await broker.deals_since(T0))
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed away
    saved = PaperBroker(state_path=path).to_state()  # the snapshot and the journal, as a restart reads them
    assert saved["next_ticket"] == 3 and saved["next_deal"] == 4 and len(saved["positions"]) == 2

    restarted = PaperBroker(state_path=path, commission_per_lot=2.0)
    await restarted.connect()
    restarted.set_tick(tick(2001.00, minutes=2))
    after = (restarted.balance, await restarted.positions(), await restarted.deals_since(T0))
    assert after == before
    new = await restarted.open_market(Side.BUY, 0.01, 1990.0, 2010.0)
    assert new.ticket == 3 and new.deal == 4  # both counters continue: positions read #1, #2, #3
    again = PaperBroker(state_path=path)
    assert [p.ticket for p in again.positions_now()] == [1, 2, 3]
    assert again.to_state() == restarted.to_state()


async def test_bad_state_is_refused(tmp_path) -> None:
    path = tmp_path / "account.json"
    path.write_text("{not json")
    with pytest.raises(BrokerError, match="unreadable") as err:
        PaperBroker(state_path=path)
    assert err.value.kind is BrokerErrorKind.CONFIG
    broker = await make()
    good = broker.to_state()
    for broken, message in [
        ({**good, "symbol": "EURUSD"}, "symbol"),
        ({**good, "version": 99}, "version"),
        ({**good, "positions": [{"ticket": 1, "bogus": 2}]}, "bogus"),
    ]:
        with pytest.raises(BrokerError, match=message):
            broker.from_state(broken)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="leverage"):
        PaperConfig(leverage=0)
    with pytest.raises(TypeError):
        PaperBroker(levrage=100)
    assert PaperBroker(config=PaperConfig(balance=500.0), leverage=30).config.leverage == 30


actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("open"),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 30),
            st.integers(0, 600),
            st.integers(0, 600),
        ),
        st.tuples(st.just("close"), st.integers(0, 5), st.integers(0, 30)),
        st.tuples(st.just("move"), st.integers(-500, 500)),
        st.tuples(st.just("bar"), st.integers(-500, 500), st.integers(0, 400), st.integers(0, 400)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_equity_is_balance_plus_floating_and_no_position_is_lost(steps) -> None:
    asyncio.run(_run_steps(steps))


async def _run_steps(steps) -> None:
    broker = await make(balance=5_000.0, commission_per_lot=1.0)
    bid, minute = 2000.0, 0
    for step in steps:
        minute += 15
        try:
            if step[0] == "open":
                _, side, lots, sl_pts, tp_pts = step
                sign = side.sign
                price = bid + (0.2 if side is Side.BUY else 0.0)
                sl = round(price - sign * (sl_pts + 50) * 0.01, 2) if sl_pts else 0.0
                tp = round(price + sign * (tp_pts + 50) * 0.01, 2) if tp_pts else 0.0
                await broker.open_market(side, lots / 100, sl, tp)
            elif step[0] == "close":
                open_now = broker.positions_now()
                if open_now:
                    pos = open_now[step[1] % len(open_now)]
                    await broker.close_position(pos.ticket, step[2] / 100 or None)
            elif step[0] == "move":
                bid = round(max(100.0, bid + step[1] * 0.01), 2)
                broker.set_tick(tick(bid, minutes=minute))
            else:
                o = bid
                c = round(max(100.0, bid + step[1] * 0.01), 2)
                h = round(max(o, c) + step[2] * 0.01, 2)
                lo = round(max(50.0, min(o, c) - step[3] * 0.01), 2)
                await broker.update_bar(bar(minute, o, h, lo, c))
                bid = c
        except OrderRejected:
            pass
        account = broker.account_now()
        positions = broker.positions_now()
        assert account.equity == pytest.approx(account.balance + sum(p.profit for p in positions), abs=0.011)
        # every position's volume is its IN volume less its OUT volumes
        deals = broker.to_state()["deals"]
        for ticket in {d["position_ticket"] for d in deals}:
            inside = sum(d["volume"] for d in deals if d["position_ticket"] == ticket and d["entry"] == "IN")
            out = sum(d["volume"] for d in deals if d["position_ticket"] == ticket and d["entry"] == "OUT")
            still = sum(p.volume for p in positions if p.ticket == ticket)
            assert inside == pytest.approx(out + still)
        # and the balance is the starting balance plus every deal's net
        assert broker.balance == pytest.approx(5_000.0 + sum(d["profit"] + d["commission"] for d in deals))


async def test_deals_since_is_the_same_from_a_saved_account_whose_deals_are_out_of_order() -> None:
    """deals_since bisects the deals by time; an account restored with its deals out of time order
    (an edited or merged state file) is scanned instead, with the same answer."""
    broker = await make()
    for i in range(6):
        broker.set_tick(tick(2000.00 + i, minutes=10 * i))
        await broker.open_market(Side.BUY, 0.01, 0.0, 0.0)
        broker.set_tick(tick(2000.50 + i, minutes=10 * i + 5))
        await broker.close_position((await broker.positions())[0].ticket)
    expected = {m: await broker.deals_since(T0 + timedelta(minutes=m)) for m in (0, 7, 25, 51, 60)}
    assert [len(v) for v in expected.values()] == [12, 10, 7, 1, 0]
    state = broker.to_state()
    state["deals"] = state["deals"][::-1]
    restored = await make()
    restored.from_state(state)
    for m, deals in expected.items():
        assert await restored.deals_since(T0 + timedelta(minutes=m)) == deals
