"""Orders whose outcome is unknown (timeout, lost link, 10012/10031): look at the broker before anyone
sends again. Each function either returns what really happened or re-raises the original cause.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from trading.broker.base import BrokerError
from trading.broker.mt5_requests import error_args
from trading.domain import Deal, DealEntry, OrderResult, Position, Side


class MT5Broker(Protocol):
    """What reconciling reads of `trading.broker.mt5.MT5Broker` (a protocol: the broker imports this module)."""

    magic: int

    _now: Callable[[], datetime]

    async def ensure_connected(self) -> None: ...
    async def positions(self) -> list[Position]: ...
    async def deals_since(self, since: datetime) -> list[Deal]: ...
    async def _position(self, ticket: int) -> Position | None: ...
    async def _deals(self, what: str, fetch: Callable[[Any], Any]) -> list[Deal]: ...


log = logging.getLogger("trading.broker.mt5")

DEAL_WINDOW = timedelta(days=1)  # how far back an open's snapshot reads our entry deals


@dataclass(frozen=True, slots=True)
class OpenSnapshot:
    """What was ours before an open was sent: its positions and its recent entry deals."""

    positions: frozenset[int]
    entry_deals: frozenset[int]
    since: datetime  # the deal window the entry deals were read over


async def snapshot_before_open(broker: MT5Broker) -> OpenSnapshot:
    since = broker._now() - DEAL_WINDOW
    positions = frozenset(p.ticket for p in await broker.positions())
    deals = frozenset(d.ticket for d in await broker.deals_since(since) if d.entry is DealEntry.IN)
    return OpenSnapshot(positions, deals, since)


async def reconcile_open(
    broker: MT5Broker,
    cause: BrokerError,
    before: OpenSnapshot,
    side: Side,
    lots: float,
    comment: str,
    sl: float = 0.0,
    tp: float = 0.0,
) -> OrderResult:
    """Outcome unknown: look for a new position of ours, or a new entry deal of ours whose position is
    already gone (its stop was hit before we looked), before anyone sends again. Orders are sent one at
    a time, so anything of ours that is new since the snapshot is this order's."""
    log.warning("MT5 open outcome unknown (%s); reconciling by magic %d", cause, broker.magic)
    try:
        await broker.ensure_connected()
        fresh = [p for p in await broker.positions() if p.ticket not in before.positions and p.side is side]
        entries = (
            []
            if fresh
            else [
                d
                for d in await broker.deals_since(before.since)
                if d.entry is DealEntry.IN
                and d.side is side
                and d.ticket not in before.entry_deals
                and d.position_ticket not in before.positions
            ]
        )
    except BrokerError as exc:
        raise type(cause)(*error_args(cause, f"; could not reconcile: {exc}")) from exc
    if fresh:
        pos = max(fresh, key=lambda p: (p.open_time, p.ticket))
        log.warning("MT5 order did reach the broker: position %d", pos.ticket)
        return OrderResult(
            ticket=pos.ticket,
            side=side,
            volume=pos.volume,
            price=pos.open_price,
            time=pos.open_time,
            requested_volume=lots,
            comment=comment,
            sl=pos.sl,
            tp=pos.tp,
        )
    if entries:
        deal = entries[-1]
        log.warning("MT5 order did reach the broker: position %d, already closed again", deal.position_ticket)
        return OrderResult(
            ticket=deal.position_ticket,
            side=side,
            volume=deal.volume,
            price=deal.price,
            time=deal.time,
            deal=deal.ticket,
            requested_volume=lots,
            comment=comment,
            sl=sl,
            tp=tp,
        )
    raise cause


async def reconcile_close(broker: MT5Broker, cause: BrokerError, pos: Position, lots: float) -> OrderResult:
    """Closed or not? A gone/shrunk position plus its newest closing deal answers it."""
    log.warning("MT5 close outcome unknown (%s); reconciling position %d", cause, pos.ticket)
    try:
        await broker.ensure_connected()
        now = await broker._position(pos.ticket)
        if now is not None and now.volume >= pos.volume - 1e-9:
            raise cause
        ticket = pos.ticket
        outs = [
            d
            for d in await broker._deals("history_deals_get", lambda m: m.history_deals_get(position=ticket))
            if d.entry is DealEntry.OUT
        ]
    except BrokerError as exc:
        if exc is cause:
            raise
        raise type(cause)(*error_args(cause, f"; could not reconcile: {exc}")) from exc
    if not outs:
        raise cause
    deal = outs[-1]
    return OrderResult(
        ticket=pos.ticket,
        side=deal.side,
        volume=deal.volume,
        price=deal.price,
        time=deal.time,
        deal=deal.ticket,
        requested_volume=lots,
        comment=deal.comment,
    )


async def reconcile_modify(broker: MT5Broker, cause: BrokerError, ticket: int, sl: float, tp: float) -> None:
    """Applied or not? The position's SL/TP answer it; anything else re-raises the cause."""
    try:
        await broker.ensure_connected()
        pos = await broker._position(ticket)
    except BrokerError as exc:
        raise type(cause)(*error_args(cause, f"; could not reconcile: {exc}")) from exc
    if pos is None or not (math.isclose(pos.sl, sl) and math.isclose(pos.tp, tp)):
        raise cause
