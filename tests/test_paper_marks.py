"""The paper account's kept marks (`trading.broker.paper_marks`) follow every change they read: a new
price, a stop moved, a partial and a full close, a deposit of balance by a close, and are kept by a
tick that leaves their figures unchanged; and the compiled `quiet_count` agrees with the plain numpy
reading of its rule on random accounts."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import numpy as np

from trading.broker.base import OrderRejected
from trading.broker.paper import PaperBroker, xauusd_spec
from trading.broker.paper_quiet import quiet_count
from trading.domain import Position, Side, Tick

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def tick(bid: float, minutes: float) -> Tick:
    return Tick(T0 + timedelta(minutes=minutes), bid, round(bid + 0.20, 2))


def fresh(broker: PaperBroker) -> tuple[list[Position], object]:
    """What the marks would be computed afresh (a new cache)."""
    from trading.broker.paper_marks import MarkCache

    cache = MarkCache()
    return cache.positions(broker), cache.account(broker)


async def test_marks_follow_prices_stops_and_closes() -> None:
    broker = PaperBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(tick(2000.00, 0))
    a = await broker.open_market(Side.BUY, 0.5, 1990.0, 2020.0)
    b = await broker.open_market(Side.SELL, 0.3, 2010.0, 1980.0)
    first = broker.positions_now()
    assert broker.positions_now() == first and broker.positions_now() is not first  # a list of its own
    assert (broker.positions_now(), broker.account_now()) == fresh(broker)
    for step, bid in enumerate((2001.5, 2003.25, 1999.0), start=1):
        broker.set_tick(tick(bid, step))
        assert (broker.positions_now(), broker.account_now()) == fresh(broker)
        assert broker.positions_now()[0].current_price == bid
    await broker.modify_position(a.ticket, 1995.0, 2020.0)
    assert broker.positions_now()[0].sl == 1995.0
    assert (broker.positions_now(), broker.account_now()) == fresh(broker)
    balance = broker.account_now().balance
    await broker.close_position(b.ticket, 0.1)  # partial
    assert broker.positions_now()[1].volume == 0.2
    assert broker.account_now().balance != balance
    assert (broker.positions_now(), broker.account_now()) == fresh(broker)
    await broker.close_position(b.ticket)
    assert [p.ticket for p in broker.positions_now()] == [a.ticket]
    assert (broker.positions_now(), broker.account_now()) == fresh(broker)
    broker.set_tick(tick(1994.0, 9))  # the stop is reached: closed by the account itself
    assert broker.positions_now() == []
    assert broker.account_now().margin == 0.0 and broker.account_now().equity == broker.balance


async def test_a_new_tick_at_the_same_closing_price_keeps_the_marks() -> None:
    """A new tick that moves only the ask leaves a BUY marked as it was: the same objects are kept,
    equal to the marks computed afresh; a moved bid marks it anew."""
    broker = PaperBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(tick(2000.00, 0))
    await broker.open_market(Side.BUY, 0.5, 1990.0, 2020.0)
    broker.set_tick(tick(2001.00, 1))
    (pos,), account = broker.positions_now(), broker.account_now()
    broker.set_tick(Tick(T0 + timedelta(minutes=2), 2001.00, 2001.35))  # the ask only
    (kept,), kept_account = broker.positions_now(), broker.account_now()
    assert kept is pos and kept_account is account
    assert ([kept], kept_account) == fresh(broker)
    broker.set_tick(tick(2001.10, 3))
    (moved,), moved_account = broker.positions_now(), broker.account_now()
    assert moved is not pos and moved.current_price == 2001.10 and moved_account.equity > account.equity
    assert ([moved], moved_account) == fresh(broker)


def reference_count(positions, spec, balance, margin, stop_out_level, bids, asks) -> int:  # type: ignore[no-untyped-def]
    """The rule as the numpy version read it before it was compiled."""
    n = int(bids.size)
    if n == 0 or not positions:
        return n
    act = np.zeros(n, dtype=bool)
    floating = np.zeros(n)
    for pos in positions:
        price = bids if pos.side is Side.BUY else asks
        sign = pos.side.sign
        if pos.sl:
            act |= (price - pos.sl) * sign <= 0
        if pos.tp:
            act |= (price - pos.tp) * sign >= 0
        floating += (price - pos.open_price) * sign * spec.money_per_price_unit(pos.volume)
    if stop_out_level > 0 and margin > 0:
        slack = 0.01 * len(positions) + 0.02
        act |= (balance + floating - slack) / margin * 100 <= stop_out_level + 1e-9
    hits = np.flatnonzero(act)
    return int(hits[0]) if hits.size else n


def test_quiet_count_matches_the_numpy_rule() -> None:
    spec = xauusd_spec("XAUUSD", 100.0, 0)
    rng = np.random.default_rng(7)
    for _ in range(3000):
        n = int(rng.integers(0, 80))
        bids = np.round(2000 + np.cumsum(rng.normal(0, 0.5, n)), 2)
        asks = np.round(bids + 0.2, 2)
        positions = []
        for k in range(int(rng.integers(0, 4))):
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            o = round(2000 + float(rng.normal(0, 1)), 2)
            sl = 0.0 if rng.random() < 0.2 else round(o - side.sign * abs(float(rng.normal(0, 3))), 2)
            tp = 0.0 if rng.random() < 0.2 else round(o + side.sign * abs(float(rng.normal(0, 3))), 2)
            volume = float(rng.choice([0.01, 0.1, 1.0, 5.0]))
            positions.append(Position(k, "XAUUSD", side, volume, o, T0, sl, tp))
        balance = float(rng.choice([100.0, 1000.0, 5000.0]))
        margin = float(rng.choice([0.0, 50.0, 500.0, 2000.0]))
        level = float(rng.choice([0.0, 50.0, 100.0]))
        args = (positions, spec, balance, margin, level, bids, asks)
        assert quiet_count(*args) == reference_count(*args)


class _AlwaysReachable:
    """A broker's marks with the stop-out bound switched off: every tick runs the exact stop-out test."""

    def __init__(self, marks: object) -> None:
        self._marks = marks

    def __getattr__(self, name: str) -> object:
        return getattr(self._marks, name)

    def stop_out_reachable(self, broker: object) -> bool:
        return True


async def test_stop_out_bound_leaves_every_tick_as_the_exact_test_does() -> None:
    """Accounts close to their stop-out, with stops near and far and a position without one: a tick the
    bound spares the exact test acts exactly as the test would have (same deals, balance and marks)."""
    rng = np.random.default_rng(11)
    reached = 0
    for _ in range(120):
        balance = float(rng.choice([1_500.0, 2_500.0, 6_000.0]))
        bound, exact = PaperBroker(balance=balance), PaperBroker(balance=balance)
        exact._marks = _AlwaysReachable(exact._marks)  # type: ignore[assignment]
        for broker in (bound, exact):
            await broker.connect()
            broker.set_tick(tick(2000.0, 0))
        for k in range(int(rng.integers(1, 4))):
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            away = 0.0 if rng.random() < 0.15 else float(rng.choice([3.0, 12.0, 40.0, 200.0]))
            price = 2000.20 if side is Side.BUY else 2000.0
            sl = round(price - side.sign * away, 2) if away else 0.0
            for broker in (bound, exact):
                with contextlib.suppress(OrderRejected):  # no margin left for it: the same on both
                    await broker.open_market(side, 0.3 * (k + 1), sl, 0.0)
        bid = 2000.0
        for minute in range(1, 150):
            bid = round(bid + float(rng.normal(0, 1.5)), 2)
            got = bound.set_tick(tick(bid, minute))
            assert got == exact.set_tick(tick(bid, minute))
            reached += any(d.reason.value == "STOP_OUT" for d in got)
            assert bound.to_state() == exact.to_state()
            assert (bound.positions_now(), bound.account_now()) == (
                exact.positions_now(),
                exact.account_now(),
            )
    assert reached > 0  # the accounts did reach their stop-out


async def test_without_a_position_a_tick_keeps_the_account_and_an_entry_marks_at_the_latest_price() -> None:
    broker = PaperBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(tick(2000.00, 0))
    account = broker.account_now()
    for step, bid in enumerate((2001.5, 1999.25), start=1):
        broker.set_tick(tick(bid, step))
        assert broker.account_now() is account and broker.positions_now() == []
        assert (broker.positions_now(), broker.account_now()) == fresh(broker)
    await broker.open_market(Side.BUY, 0.5, 1990.0, 2020.0)
    assert (broker.positions_now(), broker.account_now()) == fresh(broker)
    assert broker.positions_now()[0].current_price == 1999.25
    broker.set_tick(tick(2003.0, 3))
    assert broker.positions_now()[0].current_price == 2003.0
    assert (broker.positions_now(), broker.account_now()) == fresh(broker)
