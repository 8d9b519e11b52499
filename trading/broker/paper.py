"""The paper broker: a simulated XAUUSD hedging account behind the same `Broker` protocol.

Prices come from a feed (`trading.broker.feeds`), from `set_tick()`/`update()`, or bar by bar
from `update_bar()`. Market orders fill at the ask (BUY) or bid (SELL) moved against the trader
by the configured slippage; SL/TP are checked on every price update, on bars along the intrabar
path (SL wins when a bar touches both), and fill as MT5's tester fills them (`trading.broker.fills`):
at the level when a walked path crossed it (`Tick.walked`), at the tick's price after a gap or a real
tick's jump. Broker-side closes become deals with reason SL/TP/STOP_OUT, visible through `deals_since()`.

Money is USD. Margin of a position = volume x contract size x open price / leverage. The
commission is charged per lot on every deal (in and out) and booked to the balance at once.

With `state_path` the account (balance, positions, deals, ticket counter) is written to a JSON
file atomically after every change and read back on start, so a restart continues the account.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from trading.bars import BAR_COLUMNS, BAR_SCHEMA, empty_bars
from trading.broker.base import BrokerError, BrokerErrorKind, ConnectionLost, InvalidOrder, OrderRejected
from trading.broker.base import validate_order as _validate_order
from trading.broker.fills import FillModel, LevelFill, crossed_inside
from trading.broker.intrabar import stop_hit, touch_fraction
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

if TYPE_CHECKING:
    from trading.broker.feeds import Feed

STATE_VERSION = 1
BAR_HISTORY_LIMIT = 20_000

# MT5 trade-server return codes the paper broker reports (same meaning as on a real server)
RETCODE_INVALID = 10013
RETCODE_MARKET_CLOSED = 10018
RETCODE_NO_MONEY = 10019


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """How the simulated account and market behave. Every number is configurable."""

    balance: float = 10_000.0  # starting balance (USD) of a new account
    leverage: int = 100
    commission_per_lot: float = 0.0  # USD per lot per deal (charged on entry and on exit)
    slippage_points: int = 0  # adverse slippage on market orders, closes, stop losses and stop-outs (not on TPs)
    spread_points: int = 20  # used when a bar carries no spread
    stops_level: int = 0  # minimum SL/TP distance from the price, in points
    volume_max: float = 50.0
    stop_out_level: float = 50.0  # margin level % at which the worst position is closed; 0 = never
    timeframe_minutes: int = 15
    login: int = 1

    def __post_init__(self) -> None:
        checks = [
            (self.balance >= 0 and math.isfinite(self.balance), "balance must be a finite number >= 0"),
            (self.leverage >= 1, "leverage must be at least 1"),
            (self.commission_per_lot >= 0, "commission_per_lot must be >= 0"),
            (self.slippage_points >= 0, "slippage_points must be >= 0"),
            (self.spread_points >= 0, "spread_points must be >= 0"),
            (self.stops_level >= 0, "stops_level must be >= 0"),
            (self.volume_max > 0, "volume_max must be positive"),
            (self.stop_out_level >= 0, "stop_out_level must be >= 0"),
            (self.timeframe_minutes >= 1, "timeframe_minutes must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"paper broker config: {message}")


def xauusd_spec(symbol: str = "XAUUSD", volume_max: float = 50.0, stops_level: int = 0) -> SymbolSpec:
    """The XAUUSD contract: 100 oz per lot, point 0.01, 2 digits, lots 0.01 step 0.01."""
    return SymbolSpec(
        name=symbol,
        contract_size=100.0,
        point=0.01,
        digits=2,
        tick_size=0.01,
        tick_value=1.0,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=volume_max,
        stops_level=stops_level,
    )


class PaperBroker:
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
        self.fills = FillModel(self.config.slippage_points, self.config.commission_per_lot, self.spec.point,
                               self.spec.digits)
        self.feed = feed
        self.state_path = Path(state_path) if state_path is not None else None
        self._connected = False
        self._tick: Tick | None = None
        self._bars: list[dict[str, Any]] = []
        self._balance = round(self.config.balance, 2)
        self._positions: dict[int, Position] = {}
        self._deals: list[Deal] = []
        self._deals_in_order = True  # by time: deals_since bisects instead of scanning every deal
        self._next_ticket = 1  # orders and positions (a position's ticket is its opening order's)
        self._next_deal = 1  # deals: their own sequence, as on MT5, so positions read #1, #2, #3
        self._market_time: datetime | None = None  # the latest market moment this account has seen
        self.level_fills: list[LevelFill] = []  # every SL/TP fill of this session (the slippage figures)
        if self.state_path is not None and self.state_path.exists():
            self.from_state(self._read_state_file(self.state_path))

    # ---- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Mark the broker usable; a feed with its own `connect()` (the dry-run source) is connected too."""
        feed_connect = getattr(self.feed, "connect", None)
        if feed_connect is not None:
            await feed_connect()
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

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
        margin = self.margin_used()
        equity = self.equity()
        return AccountInfo(
            login=self.config.login,
            balance=self._balance,
            equity=equity,
            margin=margin,
            free_margin=round(equity - margin, 2),
            currency="USD",
            leverage=self.config.leverage,
            server="paper",
            trade_allowed=True,
        )

    @property
    def balance(self) -> float:
        return self._balance

    def has_positions(self) -> bool:
        return bool(self._positions)

    def floating_pl(self) -> float:
        return round(sum(self._profit(p, p.volume) for p in self._positions.values()), 2)

    def equity(self) -> float:
        return round(self._balance + self.floating_pl(), 2)

    def margin_used(self) -> float:
        return round(sum(self._margin(p.volume, p.open_price) for p in self._positions.values()), 2)

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

    async def bars(self, count: int, timeframe_minutes: int = 15) -> pl.DataFrame:
        """Bars from the feed when there is one, else the bars given to `update_bar()`."""
        self._require_connected()
        if count < 1:
            raise InvalidOrder(f"bar count must be at least 1, got {count}")
        if timeframe_minutes != self.config.timeframe_minutes:
            raise BrokerError(
                BrokerErrorKind.INVALID_REQUEST,
                f"the paper market has M{self.config.timeframe_minutes} bars only, not M{timeframe_minutes}",
            )
        if self.feed is not None:
            return await self.feed.bars(count)
        if not self._bars:
            return empty_bars()
        return pl.DataFrame(self._bars[-count:], schema=BAR_SCHEMA)

    async def positions(self) -> list[Position]:
        self._require_connected()
        await self._sync()
        return self.positions_now()

    def positions_now(self) -> list[Position]:
        """Open positions of this magic on the symbol, marked at the last price, by ticket."""
        out = []
        for ticket in sorted(self._positions):
            pos = self._positions[ticket]
            if pos.magic != self.magic or pos.symbol != self.symbol:
                continue
            price = self._tick.price_to_close(pos.side) if self._tick else pos.open_price
            out.append(replace(pos, profit=self._profit(pos, pos.volume), current_price=price))
        return out

    async def deals_since(self, since: datetime) -> list[Deal]:
        self._require_connected()
        await self._sync()
        if since.tzinfo is None:
            raise InvalidOrder(f"deals_since needs an aware UTC time, got naive {since}")
        first = bisect.bisect_left(self._deals, since, key=_deal_time) if self._deals_in_order else 0
        chosen = [d for d in self._deals[first:] if d.time >= since and d.magic == self.magic]
        return sorted(chosen, key=lambda d: (d.time, d.ticket))

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

    async def close_position(self, ticket: int, volume: float | None = None, comment: str = "") -> OrderResult:
        """Close fully (volume None) or partly at the closing price less slippage.
        The result's side is the direction of the closing deal (a BUY is closed by a SELL)."""
        self._require_connected()
        await self._sync()
        tick = self._require_tick()
        pos = self._own_position(ticket)
        close_volume = self._close_volume(pos, volume)
        price = self.fills.exit_price(tick, pos.side)
        deal = self._close(pos, close_volume, price, tick.time, DealReason.CLIENT, comment)
        self._save()
        return OrderResult(
            ticket=ticket,
            side=pos.side.opposite,
            volume=close_volume,
            price=price,
            time=tick.time,
            order=deal.ticket,
            deal=deal.ticket,
            requested_volume=close_volume,
            comment=comment,
        )

    async def modify_position(self, ticket: int, sl: float, tp: float) -> None:
        """Set SL/TP (0.0 removes one), validated against the closing price and the stops level."""
        self._require_connected()
        await self._sync()
        tick = self._require_tick()
        pos = self._own_position(ticket)
        _validate_order(self.spec, pos.side, pos.volume, tick.price_to_close(pos.side), sl, tp)
        new_sl, new_tp = self.spec.round_price(sl), self.spec.round_price(tp)
        if (new_sl, new_tp) == (pos.sl, pos.tp):
            return  # MT5 answers "no changes"; nothing to do
        self._positions[ticket] = replace(pos, sl=new_sl, tp=new_tp)
        self._save()

    # ---- prices -----------------------------------------------------------------------------

    def set_tick(self, tick: Tick) -> list[Deal]:
        """Take a new price; close positions whose SL/TP it reaches (at the tick's price, which
        is the gap price when the price jumped past the level). Older ticks are ignored.
        Returns the broker-side deals it produced."""
        if not isinstance(tick, Tick):
            raise TypeError(f"set_tick needs a Tick, got {type(tick).__name__}")
        if tick.time.tzinfo is None:
            raise ValueError(f"tick time must be aware UTC, got naive {tick.time}")
        if not (math.isfinite(tick.bid) and math.isfinite(tick.ask)) or tick.bid <= 0 or tick.ask < tick.bid:
            raise ValueError(f"bad tick: bid {tick.bid}, ask {tick.ask}")
        if self._tick is not None and tick.time < self._tick.time:
            return []
        if self._market_time is not None and tick.time < self._market_time:
            return []  # a restarted market never goes back before what the account has seen
        previous, self._tick = self._tick, tick
        self._market_time = tick.time
        deals: list[Deal] = []
        for ticket in sorted(self._positions):
            pos = self._positions[ticket]
            price = tick.price_to_close(pos.side)
            hit = stop_hit(pos.side, pos.sl, pos.tp, (price, price, price, price))
            if hit is not None:
                level = pos.sl if hit[0] is DealReason.SL else pos.tp
                crossed = crossed_inside(tick, previous, pos.side, hit[0], level)
                deals.append(self._level_close(pos, hit[0], level, price, crossed, tick.time))
        deals += self._stop_out(tick.time)
        if deals:
            self._save()
        return deals

    def profit_at(self, pos: Position, price: float) -> float:
        """The floating profit `positions_now()` would mark `pos` with at closing price `price`."""
        return self._profit(pos, pos.volume, price)

    def quiet_ticks(self, bids: np.ndarray, asks: np.ndarray) -> int:
        """How many of these next ticks (in order) `set_tick` would take without acting: no SL/TP
        reached and, with a margin allowance for the rounding, no stop-out possible. The first tick
        that might act is left for `set_tick` itself, so the answer is exact, never early."""
        n = int(bids.size)
        if n == 0 or not self._positions:
            return n
        act = np.zeros(n, dtype=bool)
        floating = np.zeros(n)
        for pos in self._positions.values():
            price = bids if pos.side is Side.BUY else asks
            sign = pos.side.sign
            if pos.sl:
                act |= (price - pos.sl) * sign <= 0
            if pos.tp:
                act |= (price - pos.tp) * sign >= 0
            floating += (price - pos.open_price) * sign * self.spec.money_per_price_unit(pos.volume)
        margin = self.margin_used()
        if self.config.stop_out_level > 0 and margin > 0:
            slack = 0.01 * len(self._positions) + 0.02  # the per-position and total roundings
            act |= (self._balance + floating - slack) / margin * 100 <= self.config.stop_out_level + 1e-9
        hits = np.flatnonzero(act)
        return int(hits[0]) if hits.size else n

    async def update(self, tick: Tick) -> list[Deal]:
        """`set_tick` for async callers."""
        return self.set_tick(tick)

    def apply_bar(self, bar: Mapping[str, Any]) -> list[Deal]:
        """Walk one bar (a BAR_SCHEMA row as a mapping, bid prices, time = open time UTC): close
        positions whose SL/TP the intrabar path reaches, then leave the price at the bar's close.
        Positions opened inside the bar are checked against the whole bar (conservative).
        A bar not after the last one applied is ignored. Returns the broker-side deals."""
        start: datetime = bar["time"]
        if not isinstance(start, datetime) or start.tzinfo is None:
            raise ValueError(f"bar time must be an aware UTC datetime, got {start!r}")
        if self._bars and start <= self._bars[-1]["time"]:
            return []
        prices = (float(bar["open"]), float(bar["high"]), float(bar["low"]), float(bar["close"]))
        spread_points = bar.get("spread")
        if spread_points is None:
            spread_points = self.config.spread_points
        spread = int(spread_points) * self.spec.point
        length = timedelta(minutes=self.config.timeframe_minutes)
        deals: list[Deal] = []
        for ticket in sorted(self._positions):
            pos = self._positions[ticket]
            if pos.open_time >= start + length:
                continue
            hit = stop_hit(pos.side, pos.sl, pos.tp, prices, spread)
            if hit is None:
                continue
            shift = spread if pos.side is Side.SELL else 0.0
            path = (prices[0] + shift, prices[1] + shift, prices[2] + shift, prices[3] + shift)
            fraction = touch_fraction(path, hit[1]) or 0.0
            when = max(start + length * fraction, pos.open_time)
            level = pos.sl if hit[0] is DealReason.SL else pos.tp
            # stop_hit already gives the level when the path crossed it and the open when the bar gapped
            deals.append(self._level_close(pos, hit[0], level, hit[1], hit[1] != path[0], when))
        close = self.spec.round_price(prices[3])
        self._tick = Tick(start + length - timedelta(seconds=1), close, self.spec.round_price(close + spread))
        deals += self._stop_out(self._tick.time)
        self._remember_bar(bar, int(spread_points))
        if deals:
            self._save()
        return deals

    async def update_bar(self, bar: Mapping[str, Any]) -> list[Deal]:
        """`apply_bar` for async callers."""
        return self.apply_bar(bar)

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

    # ---- persistence ------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The account as plain JSON-able data: balance, positions, deals, ticket counter."""
        return {
            "version": STATE_VERSION,
            "symbol": self.symbol,
            "magic": self.magic,
            "account": {"login": self.config.login, "balance": self._balance, "currency": "USD"},
            "next_ticket": self._next_ticket,
            "next_deal": self._next_deal,
            "positions": [_record_to_json(p) for p in self._positions.values()],
            "deals": [_record_to_json(d) for d in self._deals],
            "market_time": self.market_time.isoformat() if self.market_time else None,
        }

    def from_state(self, state: Mapping[str, Any]) -> None:
        """Replace this broker's account with a saved one (config and price are kept).
        Raises BrokerError(CONFIG) naming the problem; nothing changes on error."""
        try:
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"state version {state.get('version')!r}, expected {STATE_VERSION}")
            if state.get("symbol") != self.symbol:
                raise ValueError(f"state is for symbol {state.get('symbol')!r}, broker trades {self.symbol!r}")
            balance = float(state["account"]["balance"])
            positions = [_record_from_json(Position, p) for p in state["positions"]]
            deals = [_record_from_json(Deal, d) for d in state["deals"]]
            next_ticket = int(state["next_ticket"])
            next_deal = int(state.get("next_deal", next_ticket))  # older files: one counter for both
            used = [p.ticket for p in positions] + [d.position_ticket for d in deals]
            if used and next_ticket <= max(used):
                raise ValueError(f"ticket counter {next_ticket} is not above the highest ticket {max(used)}")
            deal_tickets = [d.ticket for d in deals]
            if deal_tickets and next_deal <= max(deal_tickets):
                raise ValueError(f"deal counter {next_deal} is not above the highest deal {max(deal_tickets)}")
            seen = [p.open_time for p in positions] + [d.time for d in deals]
            if state.get("market_time"):
                moment = datetime.fromisoformat(state["market_time"])
                if moment.tzinfo is None:
                    raise ValueError(f"market_time {state['market_time']!r} has no time zone")
                seen.append(moment.astimezone(UTC))
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(BrokerErrorKind.CONFIG, f"paper account state is invalid: {exc}") from exc
        self._balance = round(balance, 2)
        self._positions = {p.ticket: p for p in positions}
        self._deals = deals
        self._deals_in_order = all(a.time <= b.time for a, b in itertools.pairwise(deals))
        self._next_ticket = next_ticket
        self._next_deal = next_deal
        self._market_time = max(seen) if seen else None

    @property
    def market_time(self) -> datetime | None:
        """The latest market moment the account has seen (a price, an order, a fill); a restarted
        market resumes after it."""
        times = [t for t in (self._market_time, self._tick.time if self._tick else None) if t is not None]
        return max(times) if times else None

    def _save(self) -> None:
        if self.state_path is None:
            return
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.to_state(), fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @staticmethod
    def _read_state_file(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BrokerError(BrokerErrorKind.CONFIG, f"paper state file {path} is unreadable: {exc}") from exc

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

    def _close_volume(self, pos: Position, volume: float | None) -> float:
        if volume is None:
            return pos.volume
        if not isinstance(volume, int | float) or not math.isfinite(volume) or volume <= 0:
            raise InvalidOrder(f"close volume must be a positive number, got {volume!r}")
        snapped = self.spec.snap_volume(volume)
        if snapped <= 0:
            raise InvalidOrder(f"close volume {volume} is below the minimum {self.spec.volume_min}")
        if snapped > pos.volume + 1e-9:
            raise InvalidOrder(f"close volume {volume} is more than the position's {pos.volume}")
        remaining = self._round_volume(pos.volume - snapped)
        if 0 < remaining < self.spec.volume_min - 1e-9:
            raise InvalidOrder(f"closing {snapped} would leave {remaining}, below the minimum lot")
        return snapped

    def _level_close(self, pos: Position, reason: DealReason, level: float, price: float, crossed: bool,
                     when: datetime) -> Deal:
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
        remaining = self._round_volume(pos.volume - volume)
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
            if margin <= 0 or self.equity() / margin * 100 > self.config.stop_out_level:
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

    def _round_volume(self, volume: float) -> float:
        decimals = max(0, -math.floor(math.log10(self.spec.volume_step)))
        return round(volume, decimals)

    def _take_ticket(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket

    def _take_deal(self) -> int:
        ticket = self._next_deal
        self._next_deal += 1
        return ticket

    def _remember_bar(self, bar: Mapping[str, Any], spread_points: int) -> None:
        row = {c: bar.get(c, 0) for c in BAR_COLUMNS}
        row["spread"] = spread_points
        self._bars.append(row)
        if len(self._bars) > BAR_HISTORY_LIMIT:
            del self._bars[: len(self._bars) - BAR_HISTORY_LIMIT]


def _record_to_json(record: Position | Deal) -> dict[str, Any]:
    out = asdict(record)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.astimezone(UTC).isoformat()
        elif isinstance(value, Side | DealEntry | DealReason):
            out[key] = value.value
    return out


def _record_from_json(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    values = dict(data)
    for key in ("open_time", "time"):
        if key in values:
            moment = datetime.fromisoformat(values[key])
            if moment.tzinfo is None:
                raise ValueError(f"{cls.__name__}.{key} {values[key]!r} has no time zone")
            values[key] = moment.astimezone(UTC)
    if "side" in values:
        values["side"] = Side(values["side"])
    if "entry" in values:
        values["entry"] = DealEntry(values["entry"])
    if "reason" in values:
        values["reason"] = DealReason(values["reason"])
    return cls(**values)


def _deal_time(deal: Deal) -> datetime:
    return deal.time
