"""The paper account's marks (`PaperBroker.positions_now`, `account_now`) kept between reads while
nothing they read has changed: the same price object, the same position objects, balance and config.
Ticks, positions and the config are frozen records, so identity is enough; a replay reads the marks
several times a tick and on every quiet stretch, and rebuilding them was a good part of its time."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from trading.domain import AccountInfo, Position

if TYPE_CHECKING:
    from trading.broker.paper import PaperBroker


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class MarkCache:
    """One broker's last marks and what they were computed from."""

    __slots__ = ("_account", "_account_key", "_positions", "_positions_key")

    def __init__(self) -> None:
        self._positions_key: tuple[object, ...] = ()
        self._positions: list[Position] = []
        self._account_key: tuple[object, ...] = ()
        self._account: AccountInfo | None = None

    def positions(self, broker: PaperBroker) -> list[Position]:
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
                out.append(replace(pos, profit=broker._profit(pos, pos.volume), current_price=price))
            self._positions_key, self._positions = key, out
        return list(self._positions)

    def account(self, broker: PaperBroker) -> AccountInfo:
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
