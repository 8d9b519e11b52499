"""Domain records shared by brokers, the engine, the journal and the controller.

Every timestamp here is timezone-aware UTC. Prices are floats in the symbol's quote
currency (USD per troy ounce for XAUUSD); volumes are lots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from trading.immutable import immutable


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@immutable
class Tick:
    """A quote (`immutable`: a replay builds one for every tick it steps)."""

    time: datetime
    bid: float
    ask: float
    # True when the price walked here from the feed's previous tick along one continuous path (a vertex
    # of a generated bar or an M1 minute after its first): a level between the two was crossed, not
    # jumped. False for a bar's or minute's opening tick and for every real tick (trading.broker.fills).
    walked: bool = field(default=False, compare=False)

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> float:
        return self.ask - self.bid

    def price_to_open(self, side: Side) -> float:
        return self.ask if side is Side.BUY else self.bid

    def price_to_close(self, side: Side) -> float:
        return self.bid if side is Side.BUY else self.ask


@immutable
class AccountInfo:
    """The account as the broker reports it (`immutable`: read on every step)."""

    login: int
    balance: float
    equity: float
    margin: float
    free_margin: float
    currency: str = "USD"
    leverage: int = 100
    server: str = ""
    trade_allowed: bool = True

    @property
    def floating_pl(self) -> float:
        return self.equity - self.balance


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What the broker says about a symbol; sizing and order validation read it, never constants."""

    name: str = "XAUUSD"
    contract_size: float = 100.0
    point: float = 0.01
    digits: int = 2
    tick_size: float = 0.01
    tick_value: float = 1.0  # account currency per tick per 1 lot
    volume_min: float = 0.01
    volume_step: float = 0.01
    volume_max: float = 100.0
    stops_level: int = 0  # points
    freeze_level: int = 0  # points
    filling_modes: int = 3  # MT5 bitmask: 1 FOK, 2 IOC, 4 BOC
    trade_mode: int = 4  # SYMBOL_TRADE_MODE_FULL

    def money_per_price_unit(self, volume: float) -> float:
        """P/L in account currency for a 1.00 price move on `volume` lots."""
        return self.tick_value / self.tick_size * volume

    def round_price(self, price: float) -> float:
        return round(price, self.digits)

    def snap_volume(self, volume: float) -> float:
        """Round down to the volume step; 0.0 when below the minimum."""
        if not math.isfinite(volume) or volume <= 0:
            return 0.0
        steps = math.floor(volume / self.volume_step + 1e-9)
        snapped = min(steps * self.volume_step, self.volume_max)
        decimals = max(0, -math.floor(math.log10(self.volume_step)) if self.volume_step < 1 else 0)
        snapped = round(snapped, decimals)
        return snapped if snapped >= self.volume_min - 1e-12 else 0.0


@immutable
class Position:
    """An open position as the broker reports it (`immutable`: marked again on every step; a changed
    one is a copy, `trading.position_records`)."""

    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    open_time: datetime
    sl: float = 0.0
    tp: float = 0.0
    profit: float = 0.0  # floating P/L in account currency as the broker reports it
    magic: int = 0
    comment: str = ""
    current_price: float = 0.0
    swap: float = 0.0


@dataclass(frozen=True, slots=True)
class OrderResult:
    """A filled market order (open or close)."""

    ticket: int  # position ticket
    side: Side
    volume: float  # filled volume (may be less than requested on a partial fill)
    price: float
    time: datetime
    order: int = 0
    deal: int = 0
    requested_volume: float = 0.0
    comment: str = ""
    sl: float | None = None  # the stops really placed at the broker (it may move refused ones);
    tp: float | None = None  # None: placed as requested

    @property
    def partial(self) -> bool:
        return self.requested_volume > 0 and self.volume < self.requested_volume - 1e-9


class DealEntry(StrEnum):
    IN = "IN"
    OUT = "OUT"


class DealReason(StrEnum):
    """Why a deal happened; SL/TP hits at the broker are closes like any other (decision 7)."""

    CLIENT = "CLIENT"  # sent by this bot or a person
    SL = "SL"
    TP = "TP"
    STOP_OUT = "STOP_OUT"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class Deal:
    ticket: int
    position_ticket: int
    symbol: str
    side: Side  # direction of the deal itself (a close of a BUY is a SELL deal)
    entry: DealEntry
    volume: float
    price: float
    time: datetime
    profit: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    fee: float = 0.0
    magic: int = 0
    reason: DealReason = DealReason.CLIENT
    comment: str = ""

    @property
    def net(self) -> float:
        return self.profit + self.commission + self.swap + self.fee


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One position from open to (final) close, as the risk manager and reports see it."""

    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    close_price: float
    open_time: datetime
    close_time: datetime
    profit: float  # net of commission and swap
    reason: str  # exit rule name, or "broker_sl"/"broker_tp"
    sl: float = 0.0
    tp: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return (self.close_time - self.open_time).total_seconds()

    @property
    def price_move(self) -> float:
        """Signed price distance in the trade's favour."""
        return (self.close_price - self.open_price) * self.side.sign
