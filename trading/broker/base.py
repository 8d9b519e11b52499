"""The one protocol the engine talks to, and the typed errors every broker raises.

Implementations: `PaperBroker` (default, simulated fills), `MT5Broker` (MetaTrader5 on Windows
or the mt5linux bridge on Linux). All times are aware UTC; all results are domain dataclasses.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

from trading.domain import AccountInfo, Deal, OrderResult, Position, Side, SymbolSpec, Tick


class BrokerErrorKind(StrEnum):
    MARKET_CLOSED = "market_closed"
    NO_MONEY = "no_money"
    INVALID_STOPS = "invalid_stops"
    INVALID_VOLUME = "invalid_volume"
    INVALID_REQUEST = "invalid_request"
    REQUOTE = "requote"
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"
    TRADE_DISABLED = "trade_disabled"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    CONFIG = "config"


_HUMAN = {
    BrokerErrorKind.MARKET_CLOSED: "the market is closed",
    BrokerErrorKind.NO_MONEY: "not enough free margin",
    BrokerErrorKind.INVALID_STOPS: "stop loss or take profit is on the wrong side or too close",
    BrokerErrorKind.INVALID_VOLUME: "the volume is outside the symbol's limits",
    BrokerErrorKind.INVALID_REQUEST: "the request is invalid",
    BrokerErrorKind.REQUOTE: "the price moved (requote)",
    BrokerErrorKind.TIMEOUT: "the broker did not answer in time",
    BrokerErrorKind.DISCONNECTED: "the connection to the broker is down",
    BrokerErrorKind.TRADE_DISABLED: "trading is disabled for this account or terminal",
    BrokerErrorKind.NOT_FOUND: "no such position",
    BrokerErrorKind.REJECTED: "the broker rejected the request",
    BrokerErrorKind.CONFIG: "the broker is misconfigured",
}


class BrokerError(Exception):
    """A broker refused or failed a call. `code` is the broker's own code (MT5 retcode or last_error)."""

    retryable: bool = False

    def __init__(self, kind: BrokerErrorKind, detail: str = "", code: int | None = None) -> None:
        self.kind = kind
        self.code = code
        self.detail = detail
        text = _HUMAN[kind]
        if detail:
            text = f"{text}: {detail}"
        if code is not None:
            text = f"{text} (code {code})"
        super().__init__(text)


class OrderRejected(BrokerError):
    """The order was refused and nothing was sent or filled."""


class ConnectionLost(BrokerError):
    """Transport failure; the caller should reconnect. The outcome of an in-flight order is unknown."""

    retryable = True

    def __init__(self, detail: str = "", code: int | None = None) -> None:
        super().__init__(BrokerErrorKind.DISCONNECTED, detail, code)


class InvalidOrder(OrderRejected):
    """Refused by our own pre-send validation: nothing left the process."""

    def __init__(self, detail: str) -> None:
        super().__init__(BrokerErrorKind.INVALID_REQUEST, detail)


@runtime_checkable
class Broker(Protocol):
    """What the engine needs from a broker. Every method is async and never blocks the loop."""

    symbol: str
    magic: int

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    @property
    def connected(self) -> bool: ...

    async def account(self) -> AccountInfo: ...

    async def symbol_spec(self) -> SymbolSpec: ...

    async def tick(self) -> Tick: ...

    async def bars(self, count: int, timeframe_minutes: int = 15) -> pl.DataFrame:
        """The latest `count` bars, oldest first, in the bar-frame schema. The last row may be the
        still-forming bar; callers use `trading.bars.closed_bars` to drop it."""
        ...

    async def positions(self) -> list[Position]:
        """Open positions of this bot (filtered by magic number) on the symbol."""
        ...

    async def open_market(
        self, side: Side, volume: float, sl: float, tp: float, comment: str = ""
    ) -> OrderResult: ...

    async def close_position(
        self, ticket: int, volume: float | None = None, comment: str = ""
    ) -> OrderResult:
        """Close fully (volume None) or partly. Returns the closing fill."""
        ...

    async def modify_position(self, ticket: int, sl: float, tp: float) -> None:
        """Set SL/TP at the broker (0.0 removes one)."""
        ...

    async def deals_since(self, since: datetime) -> list[Deal]:
        """Deals of this bot since `since` (UTC), oldest first, including SL/TP hits at the broker."""
        ...


@runtime_checkable
class HistorySource(Protocol):
    """A broker that can read its own history (MetaTrader 5); the paper broker has none.

    Times are the broker's server clock as epoch seconds, both ends inclusive; results are MT5's numpy
    record arrays, oldest first (rates: `trading.bars.MT5_RATES_DTYPE`; ticks: time_msc, bid, ask, last,
    volume, flags …), empty when the range holds nothing.
    """

    symbol: str

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def rates_range(self, timeframe_minutes: int, start: int, end: int) -> np.ndarray: ...

    async def ticks_range(self, start: int, end: int) -> np.ndarray: ...


DEAL_ORDER = attrgetter("time", "ticket")  # the order `deals_since` returns deals in (a sort key)
_NUMBER = (int, float)  # what an order's numbers may be (a bool is an int, as with `int | float`)


def validate_order(spec: SymbolSpec, side: Side, volume: float, price: float, sl: float, tp: float) -> float:
    """Check an order before it leaves; return the volume snapped to the step.

    Raises InvalidOrder naming the problem. `price` is the price the order would fill at
    (ask for BUY, bid for SELL); SL/TP of 0.0 mean "none".
    """
    if not isinstance(volume, _NUMBER) or not math.isfinite(volume):
        raise InvalidOrder(f"volume must be a finite number, got {volume!r}")
    _check_price(price, sl, tp)
    if volume <= 0:
        raise InvalidOrder(f"volume must be positive, got {volume}")
    snapped = spec.snap_volume(volume)
    if snapped <= 0:
        raise InvalidOrder(f"volume {volume} is below the minimum {spec.volume_min}")
    if volume > spec.volume_max + 1e-9:
        raise InvalidOrder(f"volume {volume} is above the maximum {spec.volume_max}")
    _check_stops(spec, side, price, sl, tp)
    return snapped


def validate_stops(spec: SymbolSpec, side: Side, price: float, sl: float, tp: float) -> None:
    """`validate_order`'s checks of a held position's new SL/TP at its closing `price`: a modify leaves
    the volume as it is, checked when the position was opened. The same errors, in the same order."""
    _check_price(price, sl, tp)
    _check_stops(spec, side, price, sl, tp)


def _check_price(price: float, sl: float, tp: float) -> None:
    for name, value in (("price", price), ("sl", sl), ("tp", tp)):
        if not isinstance(value, _NUMBER) or not math.isfinite(value):
            raise InvalidOrder(f"{name} must be a finite number, got {value!r}")
    if price <= 0:
        raise InvalidOrder(f"price must be positive, got {price}")


def _check_stops(spec: SymbolSpec, side: Side, price: float, sl: float, tp: float) -> None:
    if sl < 0 or tp < 0:
        raise InvalidOrder("sl and tp must be positive prices or 0.0 for none")
    min_dist = spec.stops_level * spec.point
    sign = side.sign
    if sl and (price - sl) * sign <= min_dist:
        where = "below" if side is Side.BUY else "above"
        raise InvalidOrder(
            f"stop loss {sl:.{spec.digits}f} must be {where} the price {price:.{spec.digits}f}"
            + (f" by more than {min_dist:.{spec.digits}f}" if min_dist else "")
        )
    if tp and (tp - price) * sign <= min_dist:
        where = "above" if side is Side.BUY else "below"
        raise InvalidOrder(
            f"take profit {tp:.{spec.digits}f} must be {where} the price {price:.{spec.digits}f}"
            + (f" by more than {min_dist:.{spec.digits}f}" if min_dist else "")
        )
