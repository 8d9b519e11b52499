"""The paper account's marks (`PaperBroker.positions_now`, `account_now`) kept between reads while
nothing they read has changed: the same price object, the same position objects, balance and config.
Ticks, positions and the config are frozen records, so identity is enough; a replay reads the marks
several times a tick and on every quiet stretch, and rebuilding them was a good part of its time.
The account's equity and its stop-out test are defined here once (`equity_of`, `above_stop_out`), for the
broker and for the bound that spares a tick the exact stop-out test (`MarkCache.stop_out_reachable`)."""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING

from trading.domain import AccountInfo, Position
from trading.position_records import marked

if TYPE_CHECKING:
    from trading.broker.paper_host import PaperHost


def equity_of(balance: float, floating: float) -> float:
    """The account's equity: the balance plus the floating P/L, in cents."""
    return round(balance + floating, 2)


def above_stop_out(equity: float, margin: float, stop_out_level: float) -> bool:
    """The margin level (equity over margin, in %) is above the stop-out level: no position is closed."""
    return equity / margin * 100 > stop_out_level


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))


def _same_values(a: tuple[object, float, float, float], b: tuple[object, float, float, float]) -> bool:
    """The same config object and the same balance, equity and margin."""
    return a[0] is b[0] and _same_float(a[1], b[1]) and _same_float(a[2], b[2]) and _same_float(a[3], b[3])


def _same_float(a: float, b: float) -> bool:
    """`a` and `b` are the same number, down to the sign of a zero (so a record built from either is
    indistinguishable)."""
    return a == b and (a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b))


class MarkCache:
    """One broker's last marks and what they were computed from: the profits, floating P/L, marked
    positions and account at one price, for one book (spec, config, magic, symbol, balance and the
    position records), each computed on its first read and kept while the price and the book are the
    same objects (`_fresh`: one test a read, not one per figure)."""

    __slots__ = (
        "_account",
        "_account_values",
        "_floating",
        "_key",
        "_margin",
        "_margin_key",
        "_marked",
        "_positions",
        "_profits",
        "_reachable",
        "_reachable_key",
    )

    def __init__(self) -> None:
        self._key: tuple[object, ...] = ()  # the price and the book the figures below are for
        self._profits: dict[int, float] | None = None
        self._floating: float | None = None
        self._positions: list[Position] | None = None
        self._account: AccountInfo | None = None
        self._margin_key: tuple[object, ...] = ()
        self._margin = 0.0
        # the account last built, and the config, balance, equity and margin it holds
        self._account_values: tuple[AccountInfo, object, float, float, float] | None = None
        # ticket -> (position, spec, price) it was last marked from, and the marked position
        self._marked: dict[int, tuple[Position, object, float, Position]] = {}
        self._reachable_key: tuple[object, ...] = ()
        self._reachable = True

    def _fresh(self, broker: PaperHost) -> None:
        """Forget the figures when the price or the book has changed since they were computed (the
        price only while a position is open: without one no figure reads it)."""
        held = broker._positions
        key = (
            broker._tick if held else None, broker.spec, broker.config, broker.magic, broker.symbol,
            broker._balance, *held.values(),
        )  # fmt: skip
        if not _same(key, self._key):
            self._key = key
            self._profits = self._floating = self._positions = self._account = None

    def positions(self, broker: PaperHost) -> list[Position]:
        """Open positions of the broker's magic on its symbol, marked at its last price, by ticket."""
        self._fresh(broker)
        if self._positions is None:
            self._positions = self._mark_positions(broker)
        return list(self._positions)

    def _mark_positions(self, broker: PaperHost) -> list[Position]:
        tick, held = broker._tick, broker._positions
        profits, out = self._profits_now(broker), []
        kept: dict[int, tuple[Position, object, float, Position]] = {}
        for ticket in sorted(held):
            pos = held[ticket]
            if pos.magic != broker.magic or pos.symbol != broker.symbol:
                continue
            price = tick.price_to_close(pos.side) if tick else pos.open_price
            last = self._marked.get(ticket)
            # the profit is a function of the position, the spec and the price: a new tick that
            # leaves the closing price where it was marks the position as before
            if last is not None and last[0] is pos and last[1] is broker.spec and _same_float(last[2], price):
                mark = last[3]
            else:
                mark = marked(pos, profits[ticket], price)
            kept[ticket] = (pos, broker.spec, price, mark)
            out.append(mark)
        self._marked = kept
        return out

    def account(self, broker: PaperHost) -> AccountInfo:
        """The account at the broker's last price."""
        self._fresh(broker)
        if self._account is None:
            self._account = self._account_now(broker)
        return self._account

    def _account_now(self, broker: PaperHost) -> AccountInfo:
        margin = self.margin(broker)
        equity = equity_of(broker._balance, self._floating_now(broker))
        config, balance, last = broker.config, broker._balance, self._account_values
        # a new tick or position that leaves every figure the account holds as it was keeps it
        if last is not None and _same_values((config, balance, equity, margin), last[1:]):
            return last[0]
        # login, balance, equity, margin, free margin, currency, leverage, server, trade allowed
        account = AccountInfo(
            config.login, balance, equity, margin, round(equity - margin, 2), "USD", config.leverage,
            "paper", True,
        )  # fmt: skip
        self._account_values = (account, config, balance, equity, margin)
        return account

    def profits(self, broker: PaperHost) -> dict[int, float]:
        """Each position's floating profit at the broker's last price, by ticket (the floating P/L and
        the marked positions read the same figures on the same tick)."""
        self._fresh(broker)
        return self._profits_now(broker)

    def _profits_now(self, broker: PaperHost) -> dict[int, float]:
        if self._profits is None:
            self._profits = {t: broker._profit(p, p.volume) for t, p in broker._positions.items()}
        return self._profits

    def floating(self, broker: PaperHost) -> float:
        """The floating P/L of all the broker's positions at its last price (a stop-out check and the
        account read it on the same tick)."""
        self._fresh(broker)
        return self._floating_now(broker)

    def _floating_now(self, broker: PaperHost) -> float:
        if self._floating is None:
            self._floating = round(sum(self._profits_now(broker).values()), 2)
        return self._floating

    def stop_out_reachable(self, broker: PaperHost) -> bool:
        """Whether a stop-out could happen at a price none of the positions' stops is reached at (so a
        tick that has closed every position whose stop it reached needs the exact test only when True).
        Each position's profit is lowest at its stop, and the profit, the sums and the roundings of the
        equity only grow with it, so the equity then is at least the equity marked at the stops; a
        position without a stop leaves the loss unbounded."""
        held = broker._positions
        key = (broker.spec, broker.config, broker._balance, *held.values())
        if not _same(key, self._reachable_key):
            self._reachable = _stop_out_reachable(broker)
            self._reachable_key = key
        return self._reachable

    def margin(self, broker: PaperHost) -> float:
        """The margin the broker's positions hold (changes only with them)."""
        key = (broker.spec, broker.config, *broker._positions.values())
        if not self._margin_key or not _same(key, self._margin_key):
            value = round(sum(broker._margin(p.volume, p.open_price) for p in broker._positions.values()), 2)
            self._margin_key, self._margin = key, value
        return self._margin


def _stop_out_reachable(broker: PaperHost) -> bool:
    """`MarkCache.stop_out_reachable`, computed."""
    level, held = broker.config.stop_out_level, broker._positions
    if level <= 0 or not held:
        return False
    margin = broker.margin_used()
    if margin <= 0:
        return False
    if any(not p.sl for p in held.values()):
        return True
    at_stops = round(sum(broker._profit(p, p.volume, p.sl) for p in held.values()), 2)
    return not above_stop_out(equity_of(broker._balance, at_stops), margin, level)
