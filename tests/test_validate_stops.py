"""`validate_stops` (a modify's check of a held position's new SL/TP) raises exactly what
`validate_order` raises for the same price and stops with a valid volume, and passes what it passes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from trading.broker.base import InvalidOrder, validate_order, validate_stops
from trading.broker.paper import PaperBroker
from trading.broker.paper_config import xauusd_spec
from trading.domain import Side, Tick

PRICES = [2400.0, 0.0, -1.0, float("nan"), float("inf")]
STOPS = [0.0, 2390.0, 2399.995, 2400.0, 2400.3, 2410.0, -5.0, float("nan"), "2390"]


def _outcome(check: object, *args: object) -> str:
    try:
        check(*args)  # type: ignore[operator]
    except InvalidOrder as exc:
        return f"InvalidOrder: {exc}"
    return "ok"


@pytest.mark.parametrize("stops_level", [0, 30])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_validate_stops_agrees_with_validate_order(stops_level: int, side: Side) -> None:
    spec = xauusd_spec(stops_level=stops_level)
    for price, sl, tp in itertools.product(PRICES, STOPS, STOPS):
        expected = _outcome(validate_order, spec, side, 0.05, price, sl, tp)
        assert _outcome(validate_stops, spec, side, price, sl, tp) == expected, (price, sl, tp)


async def test_paper_modify_refuses_a_stop_through_the_price() -> None:
    broker = PaperBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(Tick(datetime(2024, 1, 2, 10, tzinfo=UTC), 2400.0, 2400.2))
    opened = await broker.open_market(Side.BUY, 0.05, 2390.0, 2420.0)
    with pytest.raises(InvalidOrder, match="stop loss 2400.50 must be below the price 2400.00"):
        await broker.modify_position(opened.ticket, 2400.5, 2420.0)
    await broker.modify_position(opened.ticket, 2395.0, 2420.0)
    (pos,) = await broker.positions()
    assert (pos.sl, pos.tp) == (2395.0, 2420.0)
