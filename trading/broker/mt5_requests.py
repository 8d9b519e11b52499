"""MT5 trade requests and return codes: what goes into an `order_send` dict and what a reply means.

Pure functions, no I/O: filling choice, comment cleaning, stop widening after 10016, trade-mode and
close-volume checks, the plain-types rule of the wire, and the typed error for each retcode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trading.broker import mt5_constants as C
from trading.broker.base import (
    BrokerError,
    BrokerErrorKind,
    ConnectionLost,
    InvalidOrder,
    OrderRejected,
)
from trading.domain import Side, SymbolSpec, Tick

MAX_COMMENT = 25  # the server allows ~31; brokers reject some longer ones, keep a margin


def filling_candidates(filling_mask: int, exemode: int = C.SYMBOL_TRADE_EXECUTION_MARKET) -> tuple[int, ...]:
    """ORDER_FILLING_* values to try for a market order, best first.

    `filling_mask` is `symbol_info().filling_mode` (bit 1 FOK, bit 2 IOC) - never a filling value itself.
    IOC first (fills what it can), then FOK; RETURN only under Exchange execution or when the symbol
    declares neither (Instant/Request execution ignores the field).
    """
    out: list[int] = []
    if filling_mask & C.SYMBOL_FILLING_IOC:
        out.append(C.ORDER_FILLING_IOC)
    if filling_mask & C.SYMBOL_FILLING_FOK:
        out.append(C.ORDER_FILLING_FOK)
    if exemode == C.SYMBOL_TRADE_EXECUTION_EXCHANGE or not out:
        out.append(C.ORDER_FILLING_RETURN)
    return tuple(out)


def clean_comment(comment: str) -> str:
    """Printable ASCII, at most 25 characters (longer or non-ASCII comments make order_send return None)."""
    text = "".join(ch for ch in str(comment) if 32 <= ord(ch) < 127)
    return text[:MAX_COMMENT]


def widen_stops(spec: SymbolSpec, side: Side, tick: Tick, sl: float, tp: float) -> tuple[float, float]:
    """Move SL/TP that sit inside the stops level (plus the spread) out to its edge; others unchanged.

    Distances are measured from the price the position would close at (bid for a BUY, ask for a SELL).
    """
    ref = tick.price_to_close(side)
    dist = (max(spec.stops_level, 0) + 1) * spec.point + tick.spread
    s = side.sign
    if sl and (ref - sl) * s < dist:
        sl = spec.round_price(ref - s * dist)
    if tp and (tp - ref) * s < dist:
        tp = spec.round_price(ref + s * dist)
    return sl, tp


def resize_for_stop(
    spec: SymbolSpec, side: Side, lots: float, asked_price: float, asked_sl: float, price: float, sl: float
) -> float:
    """The volume that puts no more money at risk at stop `sl` (from `price`) than `lots` did at the stop
    that was asked for; snapped down to the step, 0.0 below the symbol minimum."""
    if not asked_sl or not sl:
        return lots
    asked = (asked_price - asked_sl) * side.sign
    now = (price - sl) * side.sign
    if now <= asked:
        return lots
    return min(lots, spec.snap_volume(lots * asked / now))


def check_trade_mode(spec: SymbolSpec, side: Side, closing: bool) -> None:
    """Refuse, before sending, what the symbol's trade mode forbids."""
    mode = spec.trade_mode
    if mode == C.SYMBOL_TRADE_MODE_DISABLED:
        raise OrderRejected(BrokerErrorKind.TRADE_DISABLED, f"{spec.name} is not tradable at this broker")
    if closing:
        return
    if mode == C.SYMBOL_TRADE_MODE_CLOSEONLY:
        raise OrderRejected(BrokerErrorKind.TRADE_DISABLED, f"{spec.name} allows closing positions only")
    if mode == C.SYMBOL_TRADE_MODE_LONGONLY and side is Side.SELL:
        raise OrderRejected(BrokerErrorKind.TRADE_DISABLED, f"{spec.name} allows long positions only")
    if mode == C.SYMBOL_TRADE_MODE_SHORTONLY and side is Side.BUY:
        raise OrderRejected(BrokerErrorKind.TRADE_DISABLED, f"{spec.name} allows short positions only")


def retcode_error(retcode: int, server_comment: str, what: str) -> BrokerError:
    """The typed error for a trade server return code."""
    kind, text = C.describe_retcode(retcode)
    detail = f"{what}: {text}"
    if server_comment:
        detail += f" [server: {server_comment}]"
    if kind is BrokerErrorKind.DISCONNECTED:
        return ConnectionLost(detail, retcode)
    if kind is BrokerErrorKind.TIMEOUT:
        return BrokerError(kind, detail, retcode)
    return OrderRejected(kind, detail, retcode)


@dataclass(frozen=True, slots=True)
class SendReply:
    """OrderSendResult reduced to what the adapter reads."""

    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    comment: str


def to_send_reply(r: Any) -> SendReply:
    return SendReply(
        int(r.retcode), int(r.deal), int(r.order), float(r.volume), float(r.price), str(r.comment)
    )


def assert_plain(request: dict[str, Any]) -> None:
    """Only builtin int/float/str go over the wire (numpy scalars break the bridge, None breaks MT5)."""
    for key, value in request.items():
        if type(value) not in (int, float, str):
            raise InvalidOrder(
                f"request field {key!r} must be a plain int, float or str, got {type(value).__name__}"
            )


def error_args(err: BrokerError, extra: str) -> tuple[Any, ...]:
    """Constructor arguments for a copy of `err` with `extra` appended to its detail."""
    if isinstance(err, ConnectionLost):
        return (err.detail + extra, err.code)
    return (err.kind, err.detail + extra, err.code)
