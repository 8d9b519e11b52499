"""`PaperBroker.set_quiet_tick`: on the ticks `quiet_ticks` counts as taken without acting it leaves the
account exactly as `set_tick` does (price, market time, marks, account, deals, listeners), on random
accounts; it refuses the ticks `set_tick` refuses and ignores an older one, as `set_tick` does."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from trading.broker.base import OrderRejected
from trading.broker.paper import PaperBroker
from trading.domain import Side, Tick

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(bid: float, seconds: float, spread: float = 0.2) -> Tick:
    return Tick(T0 + timedelta(seconds=seconds), bid, round(bid + spread, 2))


async def account(rng: random.Random) -> tuple[PaperBroker, list[Tick]]:
    """A broker with up to three positions (stops near and far) and the price walk after its entries."""
    broker = PaperBroker(balance=rng.choice((2_000.0, 10_000.0)))
    await broker.connect()
    broker.set_tick(at(2000.0, 0))
    for _ in range(rng.randint(1, 3)):
        side = rng.choice((Side.BUY, Side.SELL))
        sign = 1 if side is Side.BUY else -1
        sl = round(2000.0 - sign * rng.uniform(0.5, 6.0), 2)
        tp = round(2000.0 + sign * rng.uniform(0.5, 6.0), 2)
        with contextlib.suppress(OrderRejected):  # (too little free margin for it)
            await broker.open_market(side, rng.choice((0.01, 0.1, 0.5)), sl, tp)
    bid, walk = 2000.0, []
    for k in range(1, 80):
        bid = round(bid + rng.uniform(-0.6, 0.6), 2)
        walk.append(at(bid, k))
    return broker, walk


def seen(broker: PaperBroker) -> tuple[object, ...]:
    return (
        broker._tick,
        broker._market_time,
        broker.positions_now(),
        broker.account_now(),
        broker.balance,
        list(broker._deals),
    )


@pytest.mark.parametrize("seed", range(40))
async def test_a_counted_quiet_tick_leaves_the_account_as_set_tick(seed: int) -> None:
    rng = random.Random(seed)
    broker, walk = await account(rng)
    twin, _ = await account(random.Random(seed))  # the same account, stepped with set_tick
    heard: list[Tick] = []
    twin_heard: list[Tick] = []
    broker.listeners.append(heard.append)
    twin.listeners.append(twin_heard.append)
    bids = np.array([t.bid for t in walk])
    asks = np.array([t.ask for t in walk])
    n = broker.quiet_ticks(bids, asks)
    assert n == twin.quiet_ticks(bids, asks)
    taken = [t for t in walk[:n] if rng.random() < 0.5]  # some of them, as a replay's shortcut
    for t in taken:
        broker.set_quiet_tick(t)
        assert twin.set_tick(t) == []
        assert seen(broker) == seen(twin)
    assert heard == twin_heard == taken


async def test_set_quiet_tick_refuses_and_ignores_as_set_tick() -> None:
    broker = PaperBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(at(2000.0, 10))
    broker.set_quiet_tick(at(2001.0, 5))  # older: ignored
    assert broker._tick == at(2000.0, 10)
    with pytest.raises(ValueError, match="bad tick"):
        broker.set_quiet_tick(at(2000.0, 20, spread=-0.1))
    with pytest.raises(ValueError, match="naive"):
        broker.set_quiet_tick(Tick(datetime(2026, 3, 2, 9), 2000.0, 2000.2))
    with pytest.raises(TypeError, match="needs a Tick"):
        broker.set_quiet_tick((T0, 2000.0, 2000.2))  # type: ignore[arg-type]
    assert broker._tick == at(2000.0, 10)
    broker.set_quiet_tick(at(2002.0, 30))
    assert broker._tick == at(2002.0, 30) and broker.now() == T0 + timedelta(seconds=30)
