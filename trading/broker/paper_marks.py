"""The paper account's marks (`PaperBroker.positions_now`, `account_now`) kept between reads while
nothing they read has changed: the same price object, the same position objects, balance and config.
Ticks, positions and the config are frozen records, so identity is enough; a replay reads the marks
several times a tick and on every quiet stretch, and rebuilding them was a good part of its time."""

from __future__ import annotations

import operator
from dataclasses import fields
from typing import TYPE_CHECKING

from trading.domain import AccountInfo, Position

if TYPE_CHECKING:
    from trading.broker.paper_host import PaperHost


# `_marked` names every field of Position (dataclasses.replace took a third of the marking time):
# a field added to the record must be added there too
_POSITION_FIELDS = (
    "ticket", "symbol", "side", "volume", "open_price", "open_time", "sl", "tp", "profit", "magic",
    "comment", "current_price", "swap",
)  # fmt: skip
if tuple(f.name for f in fields(Position)) != _POSITION_FIELDS:
    raise TypeError("trading.domain.Position changed: update paper_marks._marked")


def _marked(pos: Position, profit: float, price: float) -> Position:
    """`replace(pos, profit=profit, current_price=price)`."""
    return Position(
        pos.ticket, pos.symbol, pos.side, pos.volume, pos.open_price, pos.open_time, pos.sl, pos.tp,
        profit, pos.magic, pos.comment, price, pos.swap,
    )  # fmt: skip


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))


class MarkCache:
    """One broker's last marks and what they were computed from."""

    __slots__ = (
        "_account",
        "_account_key",
        "_floating",
        "_floating_key",
        "_margin",
        "_margin_key",
        "_positions",
        "_positions_key",
    )

    def __init__(self) -> None:
        self._floating_key: tuple[object, ...] = ()
        self._floating = 0.0
        self._margin_key: tuple[object, ...] = ()
        self._margin = 0.0
        self._positions_key: tuple[object, ...] = ()
        self._positions: list[Position] = []
        self._account_key: tuple[object, ...] = ()
        self._account: AccountInfo | None = None

    def positions(self, broker: PaperHost) -> list[Position]:
        """Open positions of the broker's magic on its symbol, marked at its last price, by ticket."""
        tick, held = broker._tick, broker._positions
        key = (tick, broker.spec, broker.magic, broker.symbol, *held.values())
        if not _same(key, self._positions_key):
            out = []
            for ticket in sorted(held):
                pos = held[ticket]
                if pos.magic != broker.magic or pos.symbol != broker.symbol:
                    continue
                price = tick.price_to_close(pos.side) if tick else pos.open_price
                out.append(_marked(pos, broker._profit(pos, pos.volume), price))
            self._positions_key, self._positions = key, out
        return list(self._positions)

    def account(self, broker: PaperHost) -> AccountInfo:
        """The account at the broker's last price."""
        key = (broker._tick, broker.spec, broker.config, broker._balance, *broker._positions.values())
        if self._account is None or not _same(key, self._account_key):
            margin = broker.margin_used()
            equity = broker.equity()
            self._account = AccountInfo(
                login=broker.config.login,
                balance=broker._balance,
                equity=equity,
                margin=margin,
                free_margin=round(equity - margin, 2),
                currency="USD",
                leverage=broker.config.leverage,
                server="paper",
                trade_allowed=True,
            )
            self._account_key = key
        return self._account

    def floating(self, broker: PaperHost) -> float:
        """The floating P/L of all the broker's positions at its last price (a stop-out check and the
        account read it on the same tick)."""
        key = (broker._tick, broker.spec, *broker._positions.values())
        if not self._floating_key or not _same(key, self._floating_key):
            value = round(sum(broker._profit(p, p.volume) for p in broker._positions.values()), 2)
            self._floating_key, self._floating = key, value
        return self._floating

    def margin(self, broker: PaperHost) -> float:
        """The margin the broker's positions hold (changes only with them)."""
        key = (broker.spec, broker.config, *broker._positions.values())
        if not self._margin_key or not _same(key, self._margin_key):
            value = round(sum(broker._margin(p.volume, p.open_price) for p in broker._positions.values()), 2)
            self._margin_key, self._margin = key, value
        return self._margin
