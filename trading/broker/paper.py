"""The paper broker: a simulated XAUUSD hedging account behind the same `Broker` protocol.

Prices come from a feed (`trading.broker.feeds`), from `set_tick()`/`update()`, or bar by bar
from `update_bar()`. Market orders fill at the ask (BUY) or bid (SELL) moved against the trader
by the configured slippage; SL/TP are checked on every price update, on bars along the intrabar
path (SL wins when a bar touches both), and fill as MT5's tester fills them (`trading.broker.fills`):
at the level when a walked path crossed it (`Tick.walked`), at the tick's price after a gap or a real
tick's jump. Broker-side closes become deals with reason SL/TP/STOP_OUT, visible through `deals_since()`.

Money is USD. Margin of a position = volume x contract size x open price / leverage. The
commission is charged per lot on every deal (in and out) and booked to the balance at once.

With `state_path` every change of the account (balance, positions, deals, ticket counters) is written
before the call returns, as one journal record beside a snapshot (`paper_journal.PaperJournal`), and
read back on start, so a restart (a kill -9 too) continues the account. `listeners` get every price the
account takes (the shadow challengers take the same ticks). The bar-by-bar path is `paper_bars.PaperBars`;
the settings `PaperConfig`.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trading.broker.base import (
    DEAL_ORDER,
    BrokerError,
    BrokerErrorKind,
    ConnectionLost,
    InvalidOrder,
    OrderRejected,
    validate_stops,
)
from trading.broker.base import validate_order as _validate_order
from trading.broker.fills import FillModel, LevelFill, crossed_inside
from trading.broker.intrabar import stop_hit
from trading.broker.paper_bars import BAR_HISTORY_LIMIT, PaperBars
from trading.broker.paper_config import (
    RETCODE_INVALID,
    RETCODE_MARKET_CLOSED,
    RETCODE_NO_MONEY,
    PaperConfig,
    xauusd_spec,
)
from trading.broker.paper_journal import PaperJournal
from trading.broker.paper_marks import MarkCache, above_stop_out, equity_of
from trading.broker.paper_prices import takes
from trading.broker.paper_quiet import QuietRows, count_with_rows
from trading.broker.paper_state import STATE_VERSION, PaperState
from trading.broker.volumes import close_volume, round_volume
from trading.domain import (
    AccountInfo,
    Deal,
    DealEntry,
    DealReason,
    OrderResult,
    Position,
    Side,
    SymbolSpec,
    Tick,
)
from trading.position_records import with_stops

if TYPE_CHECKING:
    import numpy as np

    from trading.broker.feeds import Feed

_DEAL_TIME = attrgetter("time")


class PaperBroker(PaperState, PaperBars):
    """A simulated account implementing `trading.broker.base.Broker`.

    `PaperBroker(symbol="XAUUSD", magic=123456, feed=None, state_path=None, config=None, **settings)`
    where `settings` are `PaperConfig` fields (e.g. `balance=5000, commission_per_lot=3.5`).
    """

    def __init__(
        self,
        symbol: str = "XAUUSD",
        magic: int = 123456,
        *,
        feed: Feed | None = None,
        state_path: str | Path | None = None,
        config: PaperConfig | None = None,
        **settings: Any,
    ) -> None:
        base = config or PaperConfig()
        self.config = replace(base, **settings) if settings else base
        self.symbol = symbol
        self.magic = magic
        self.spec = xauusd_spec(symbol, self.config.volume_max, self.config.stops_level)
        self.fills = FillModel(
            self.config.slippage_points, self.config.commission_per_lot, self.spec.point, self.spec.digits
        )
        self.feed = feed
        self.state_path = Path(state_path) if state_path is not None else None
        self._connected = False
        self._tick: Tick | None = None
        self._bars: list[dict[str, Any]] = []
        self._balance = round(self.config.balance, 2)
        self._positions: dict[int, Position] = {}
        self._marks = MarkCache()  # positions_now / account_now while nothing they read changed
        self._quiet_rows = QuietRows()  # the positions as quiet_ticks reads them
        self._deals: list[Deal] = []
        self._deals_in_order = True  # by time: deals_since bisects instead of scanning every deal
        self._next_ticket = 1  # orders and positions (a position's ticket is its opening order's)
        self._next_deal = 1  # deals: their own sequence, as on MT5, so positions read #1, #2, #3
        self._market_time: datetime | None = None  # the latest market moment this account has seen
        self.level_fills: list[LevelFill] = []  # every SL/TP fill of this session (the slippage figures)
        self.listeners: list[Callable[[Tick], object]] = []  # called with every price the account takes
        self.journal = (
            PaperJournal(self.state_path, symbol, magic, self.config.login) if self.state_path else None
        )
        loaded = self.journal.load() if self.journal is not None else None
        if loaded is not None:
            self._restore(loaded)

    # ---- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Mark the broker usable; a feed with its own `connect()` (the dry-run source) is connected too."""
        feed_connect = getattr(self.feed, "connect", None)
        if feed_connect is not None:
            await feed_connect()
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False
        if self.journal is not None:
            self.journal.close()

    @property
    def connected(self) -> bool:
        return self._connected

    def _require_connected(self) -> None:
        if not self._connected:
            raise ConnectionLost("the paper broker is not connected; call connect() first")

    # ---- reads ------------------------------------------------------------------------------

    async def account(self) -> AccountInfo:
        self._require_connected()
        await self._sync()
        return self.account_now()

    def account_now(self) -> AccountInfo:
        """The account at the last known price, without waiting for the feed."""
        return self._marks.account(self)

    @property
    def balance(self) -> float:
        return self._balance

    def has_positions(self) -> bool:
        return bool(self._positions)

    def floating_pl(self) -> float:
        return self._marks.floating(self)

    def equity(self) -> float:
        return equity_of(self._balance, self.floating_pl())

    def margin_used(self) -> float:
        return self._marks.margin(self)

    def now(self) -> datetime:
        """Market time: the feed's clock, else the last price's time, else the wall clock (UTC)."""
        if self.feed is not None:
            return self.feed.now()
        return self._tick.time if self._tick is not None else datetime.now(UTC)

    async def symbol_spec(self) -> SymbolSpec:
        return self.spec

    async def tick(self) -> Tick:
        self._require_connected()
        await self._sync()
        return self._require_tick()

    async def positions(self) -> list[Position]:
        self._require_connected()
        await self._sync()
        return self.positions_now()

    def positions_now(self) -> list[Position]:
        """Open positions of this magic on the symbol, marked at the last price, by ticket."""
        return self._marks.positions(self)

    async def deals_since(self, since: datetime) -> list[Deal]:
        self._require_connected()
        await self._sync()
        if since.tzinfo is None:
            raise InvalidOrder(f"deals_since needs an aware UTC time, got naive {since}")
        if self._deals_in_order:  # by time: the deals from `since` on are a tail of them
            recent = self._deals[bisect.bisect_left(self._deals, since, key=_DEAL_TIME) :]
        else:
            recent = [d for d in self._deals if d.time >= since]
        return sorted([d for d in recent if d.magic == self.magic], key=DEAL_ORDER)

    # ---- trading ----------------------------------------------------------------------------

    async def open_market(
        self, side: Side, volume: float, sl: float, tp: float, comment: str = ""
    ) -> OrderResult:
        self._require_connected()
        await self._sync()
        if not isinstance(side, Side):
            raise InvalidOrder(f"side must be Side.BUY or Side.SELL, got {side!r}")
        tick = self._require_tick()
        quote = tick.price_to_open(side)
        snapped = _validate_order(self.spec, side, volume, quote, sl, tp)
        # a real server checks the stops against the price the position closes at, too
        _validate_order(self.spec, side, snapped, tick.price_to_close(side), sl, tp)
        fill = self.fills.entry_price(tick, side)
        commission = self.fills.commission(snapped)
        needed = self._margin(snapped, fill)
        account = self.account_now()
        if needed - commission > account.free_margin + 1e-9:
            extra = f" plus {-commission:.2f} USD commission" if commission else ""
            raise OrderRejected(
                BrokerErrorKind.NO_MONEY,
                f"{snapped:.2f} lots at {fill:.2f} need {needed:.2f} USD margin{extra}, "
                f"free margin is {account.free_margin:.2f} USD",
                RETCODE_NO_MONEY,
            )
        ticket = self._take_ticket()
        position = Position(
            ticket=ticket,
            symbol=self.symbol,
            side=side,
            volume=snapped,
            open_price=fill,
            open_time=tick.time,
            sl=self.spec.round_price(sl),
            tp=self.spec.round_price(tp),
            magic=self.magic,
            comment=comment,
        )
        deal = Deal(
            ticket=self._take_deal(),
            position_ticket=ticket,
            symbol=self.symbol,
            side=side,
            entry=DealEntry.IN,
            volume=snapped,
            price=fill,
            time=tick.time,
            commission=commission,
            magic=self.magic,
            reason=DealReason.CLIENT,
            comment=comment,
        )
        self._positions[ticket] = position
        self._add_deal(deal)
        self._balance = round(self._balance + commission, 2)
        self._save()
        return OrderResult(
            ticket=ticket,
            side=side,
            volume=snapped,
            price=fill,
            time=tick.time,
            order=ticket,
            deal=deal.ticket,
            requested_volume=snapped,
            comment=comment,
        )

    async def close_position(
        self, ticket: int, volume: float | None = None, comment: str = ""
    ) -> OrderResult:
        """Close fully (volume None) or partly at the closing price less slippage.
        The result's side is the direction of the closing deal (a BUY is closed by a SELL)."""
        self._require_connected()
        await self._sync()
        tick = self._require_tick()
        pos = self._own_position(ticket)
        taken = close_volume(self.spec, pos, volume)
        price = self.fills.exit_price(tick, pos.side)
        deal = self._close(pos, taken, price, tick.time, DealReason.CLIENT, comment)
        self._save()
        return OrderResult(
            ticket=ticket,
            side=pos.side.opposite,
            volume=taken,
            price=price,
            time=tick.time,
            order=deal.ticket,
            deal=deal.ticket,
            requested_volume=taken,
            comment=comment,
        )

    async def modify_position(self, ticket: int, sl: float, tp: float) -> None:
        """Set SL/TP (0.0 removes one), validated against the closing price and the stops level."""
        self._require_connected()
        await self._sync()
        tick = self._require_tick()
        pos = self._own_position(ticket)
        validate_stops(self.spec, pos.side, tick.price_to_close(pos.side), sl, tp)
        new_sl, new_tp = self.spec.round_price(sl), self.spec.round_price(tp)
        if (new_sl, new_tp) == (pos.sl, pos.tp):
            return  # MT5 answers "no changes"; nothing to do
        self._positions[ticket] = with_stops(pos, new_sl, new_tp)
        self._save()

    # ---- prices -----------------------------------------------------------------------------

    def set_tick(self, tick: Tick) -> list[Deal]:
        """Take a new price; close positions whose SL/TP it reaches (at the tick's price, which
        is the gap price when the price jumped past the level). Older ticks are ignored.
        Returns the broker-side deals it produced."""
        previous = self._tick
        if not self._take_price(tick):
            return []
        deals: list[Deal] = []
        for ticket in sorted(self._positions):
            pos = self._positions[ticket]
            price = tick.price_to_close(pos.side)
            hit = stop_hit(pos.side, pos.sl, pos.tp, (price, price, price, price))
            if hit is not None:
                level = pos.sl if hit[0] is DealReason.SL else pos.tp
                crossed = crossed_inside(tick, previous, pos.side, hit[0], level)
                deals.append(self._level_close(pos, hit[0], level, price, crossed, tick.time))
        # every position whose stop this tick reached is closed: the others' stop-out has a bound
        if self._positions and self._marks.stop_out_reachable(self):
            deals += self._stop_out(tick.time)
        if deals:
            self._save()
        for listener in self.listeners:
            listener(tick)
        return deals

    def set_quiet_tick(self, tick: Tick) -> None:
        """`set_tick` of a tick `quiet_ticks` counted as taken without acting (with the same positions,
        balance and config): no SL/TP reached, no stop-out possible, so neither is checked again."""
        if self._take_price(tick):
            for listener in self.listeners:
                listener(tick)

    def _take_price(self, tick: Tick) -> bool:
        """Take the tick's price when the account takes it (`paper_prices.takes`)."""
        if not takes(tick, self._tick, self._market_time):
            return False
        self._tick, self._market_time = tick, tick.time
        return True

    def profit_at(self, pos: Position, price: float) -> float:
        """The floating profit `positions_now()` would mark `pos` with at closing price `price`."""
        return self._profit(pos, pos.volume, price)

    def profits_at(self, pos: Position, prices: list[float]) -> list[float]:
        """`profit_at` for each price (a replay's profit samples), its arithmetic hoisted out of the loop."""
        sign, per_unit, open_price = pos.side.sign, self.spec.money_per_price_unit(pos.volume), pos.open_price
        return [round((price - open_price) * sign * per_unit, 2) for price in prices]

    def quiet_ticks(self, bids: np.ndarray, asks: np.ndarray) -> int:
        """How many of these next ticks `set_tick` would take without acting (`paper_quiet.quiet_count`)."""
        if bids.size == 0 or not self._positions:
            return int(bids.size)
        rows = self._quiet_rows.of(self._positions.values(), self.spec)
        return count_with_rows(
            rows, self._balance, self.margin_used(), self.config.stop_out_level, bids, asks
        )

    async def update(self, tick: Tick) -> list[Deal]:
        """`set_tick` for async callers."""
        return self.set_tick(tick)

    async def run(self) -> int:
        """Consume the feed tick by tick (so no SL/TP between polls is missed) until it ends.
        Returns the number of ticks applied. Cancel the task to stop it early."""
        if self.feed is None:
            raise BrokerError(BrokerErrorKind.CONFIG, "the paper broker has no feed to run")
        count = 0
        while (tick := await self.feed.next_tick()) is not None:
            self.set_tick(tick)
            count += 1
            if count % 256 == 0:
                await asyncio.sleep(0)  # a fast replay must not starve the loop
        return count

    # ---- internals --------------------------------------------------------------------------
    async def _sync(self) -> None:
        """Pull the feed's latest price, if there is a feed and it moved on."""
        if self.feed is None:
            return
        tick = await self.feed.tick()
        if tick is not None and tick is not self._tick and tick != self._tick:
            self.set_tick(tick)

    def _require_tick(self) -> Tick:
        if self._tick is None:
            raise OrderRejected(
                BrokerErrorKind.MARKET_CLOSED, f"no price for {self.symbol} yet", RETCODE_MARKET_CLOSED
            )
        return self._tick

    def _own_position(self, ticket: int) -> Position:
        pos = self._positions.get(ticket)
        if pos is None or pos.magic != self.magic:
            raise OrderRejected(BrokerErrorKind.NOT_FOUND, f"ticket {ticket}", RETCODE_INVALID)
        return pos

    def _level_close(
        self, pos: Position, reason: DealReason, level: float, price: float, crossed: bool, when: datetime
    ) -> Deal:
        """Close `pos` by its triggered SL/TP at `level`, reached at closing price `price` (the fill model
        prices it); the comment names the level, as MT5's does."""
        fill = self.fills.level_fill(pos.side, reason, level, price, crossed=crossed)
        self.level_fills.append(LevelFill(reason, pos.side, level, fill, crossed))
        return self._close(pos, pos.volume, fill, when, reason, f"[{reason.value.lower()} {level:.2f}]")

    def _close(
        self, pos: Position, volume: float, price: float, when: datetime, reason: DealReason, comment: str
    ) -> Deal:
        profit = self._profit(pos, volume, price)
        commission = self.fills.commission(volume)
        deal = Deal(
            ticket=self._take_deal(),
            position_ticket=pos.ticket,
            symbol=pos.symbol,
            side=pos.side.opposite,
            entry=DealEntry.OUT,
            volume=volume,
            price=price,
            time=when,
            profit=profit,
            commission=commission,
            magic=pos.magic,
            reason=reason,
            comment=comment,
        )
        remaining = round_volume(self.spec, pos.volume - volume)
        if remaining > 0:
            self._positions[pos.ticket] = replace(pos, volume=remaining)
        else:
            del self._positions[pos.ticket]
        self._add_deal(deal)
        self._balance = round(self._balance + profit + commission, 2)
        return deal

    def _add_deal(self, deal: Deal) -> None:
        if self._deals and deal.time < self._deals[-1].time:
            self._deals_in_order = False
        self._deals.append(deal)

    def _stop_out(self, when: datetime) -> list[Deal]:
        """Close the worst position while the margin level is at or below the stop-out level."""
        deals: list[Deal] = []
        if self.config.stop_out_level <= 0 or self._tick is None:
            return deals
        while self._positions:
            margin = self.margin_used()
            if margin <= 0 or above_stop_out(self.equity(), margin, self.config.stop_out_level):
                break
            worst = min(self._positions.values(), key=lambda p: (self._profit(p, p.volume), p.ticket))
            price = self.fills.exit_price(self._tick, worst.side)
            deals.append(self._close(worst, worst.volume, price, when, DealReason.STOP_OUT, "[so]"))
        return deals

    def _profit(self, pos: Position, volume: float, price: float | None = None) -> float:
        if price is None:
            if self._tick is None:
                return 0.0
            price = self._tick.price_to_close(pos.side)
        move = (price - pos.open_price) * pos.side.sign
        return round(move * self.spec.money_per_price_unit(volume), 2)

    def _margin(self, volume: float, price: float) -> float:
        return volume * self.spec.contract_size * price / self.config.leverage


__all__ = [
    "BAR_HISTORY_LIMIT",
    "RETCODE_INVALID",
    "RETCODE_MARKET_CLOSED",
    "RETCODE_NO_MONEY",
    "STATE_VERSION",
    "PaperBroker",
    "PaperConfig",
    "xauusd_spec",
]
