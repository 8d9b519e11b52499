"""MetaTrader 5 behind the Broker protocol: the real package on Windows or the mt5linux bridge on Linux.

The module object is injected (`create_mt5_module` builds one); nothing here imports MetaTrader5.
Rules this adapter keeps (shared/spec/mt5-api.md):
- every call runs in a worker thread under one lock (the MT5 IPC is not thread-safe) with a timeout;
- every record is converted to a domain dataclass inside that call: no remote proxy outlives it;
- every argument is a builtin int/float/str (the bridge evaluates `repr()` of its arguments remotely);
- broker server-clock epochs become aware UTC through the configured `ServerClock`;
- an order whose outcome is unknown (timeout, lost link) is reconciled, never blindly sent again.

Split along its seams: the session (`mt5_session`: worker-thread calls, connect and reconnect, the
checks at connect), requests and retcodes (`mt5_requests`), record conversion (`mt5_convert`),
reconciliation of unknown outcomes (`mt5_reconcile`), building the module object (`mt5_module`);
this module keeps the Broker protocol itself (reads, history, the order loops).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from trading.bars import MT5_RATES_DTYPE, from_mt5_rates
from trading.broker import mt5_constants as C
from trading.broker.base import (
    BrokerError,
    BrokerErrorKind,
    ConnectionLost,
    InvalidOrder,
    OrderRejected,
    validate_order,
)
from trading.broker.mt5_convert import (
    MT5_TICKS_DTYPE,
    date_arg,
    local_array,
    structured_array,
    to_account,
    to_deal,
    to_position,
    to_spec,
)
from trading.broker.mt5_module import create_mt5_module, mt5_module_factory
from trading.broker.mt5_reconcile import (
    reconcile_close,
    reconcile_modify,
    reconcile_open,
    snapshot_before_open,
)
from trading.broker.mt5_requests import (
    MAX_COMMENT,
    SendReply,
    assert_plain,
    check_trade_mode,
    clean_comment,
    filling_candidates,
    resize_for_stop,
    retcode_error,
    to_send_reply,
    widen_stops,
)
from trading.broker.mt5_session import DEFAULT_CLOCK, DEFAULT_MAGIC, MT5Session, netting_refusal
from trading.broker.volumes import close_volume
from trading.domain import AccountInfo, Deal, OrderResult, Position, Side, SymbolSpec, Tick

# the split modules' public names stay importable from here
__all__ = [
    "DEFAULT_CLOCK",
    "DEFAULT_MAGIC",
    "MAX_COMMENT",
    "MT5Broker",
    "check_trade_mode",
    "clean_comment",
    "create_mt5_module",
    "filling_candidates",
    "mt5_module_factory",
    "netting_refusal",
    "retcode_error",
    "widen_stops",
]

log = logging.getLogger(__name__)

# ---- the adapter ----------------------------------------------------------------------------------


class MT5Broker(MT5Session):
    """Broker protocol over an injected MetaTrader5 module (or mt5linux client); see MT5Session for the
    constructor. Also a HistorySource (copy_rates_range, copy_ticks_range)."""

    # ---- market and account -----------------------------------------------------------------------

    async def account(self) -> AccountInfo:
        return await self._read("account_info", lambda m: m.account_info(), to_account)

    async def _spec_and_exemode(self) -> tuple[SymbolSpec, int]:
        symbol = self.symbol
        spec, exemode = await self._read("symbol_info", lambda m: m.symbol_info(symbol), to_spec)
        self._exemode = exemode
        return spec, exemode

    async def symbol_spec(self) -> SymbolSpec:
        return (await self._spec_and_exemode())[0]

    async def tick(self) -> Tick:
        symbol, clock = self.symbol, self.clock

        def convert(t: Any) -> Tick:
            return Tick(time=clock.epoch_to_utc(int(t.time_msc) / 1000), bid=float(t.bid), ask=float(t.ask))

        return await self._read("symbol_info_tick", lambda m: m.symbol_info_tick(symbol), convert)

    async def bars(self, count: int, timeframe_minutes: int = 15) -> pl.DataFrame:
        if type(count) is not int or count <= 0:
            raise ValueError(f"count must be a positive int, got {count!r}")
        timeframe = C.timeframe_from_minutes(timeframe_minutes)
        symbol = self.symbol

        def convert(rates: Any) -> np.ndarray:
            local = local_array(rates)
            if local.dtype.names != MT5_RATES_DTYPE.names:
                raise BrokerError(
                    BrokerErrorKind.REJECTED, f"copy_rates_from_pos returned dtype {local.dtype}"
                )
            return local.astype(MT5_RATES_DTYPE)

        rates = await self._read(
            "copy_rates_from_pos",
            lambda m: m.copy_rates_from_pos(symbol, timeframe, 0, count),
            convert,
        )
        return from_mt5_rates(rates, self.clock)

    # ---- history (HistorySource) -------------------------------------------------------------------

    async def rates_range(self, timeframe_minutes: int, start: int, end: int) -> np.ndarray:
        """copy_rates_range: bars opened in [start, end] (server-clock epoch seconds), oldest first, as a
        local MT5 rates array (times stay server-clock epochs). No bars in the range: an empty array."""
        timeframe = C.timeframe_from_minutes(timeframe_minutes)
        symbol, lo, hi = self.symbol, date_arg(start), date_arg(end)
        return await self._read(
            "copy_rates_range",
            lambda m: m.copy_rates_range(symbol, timeframe, lo, hi),
            lambda raw: structured_array(raw, MT5_RATES_DTYPE, "copy_rates_range"),
        )

    async def ticks_range(self, start: int, end: int) -> np.ndarray:
        """copy_ticks_range(COPY_TICKS_ALL): ticks in [start, end] (server-clock epoch seconds) as a local MT5
        ticks array (`time_msc` in server-clock milliseconds), oldest first."""
        symbol, lo, hi = self.symbol, date_arg(start), date_arg(end)
        return await self._read(
            "copy_ticks_range",
            lambda m: m.copy_ticks_range(symbol, lo, hi, C.COPY_TICKS_ALL),
            lambda raw: structured_array(raw, MT5_TICKS_DTYPE, "copy_ticks_range"),
        )

    async def _positions_all(self) -> list[Position]:
        symbol, clock = self.symbol, self.clock
        return await self._read(
            "positions_get",
            lambda m: m.positions_get(symbol=symbol),
            lambda raw: [to_position(p, clock) for p in raw],
            empty=[],
        )

    async def positions(self) -> list[Position]:
        return [p for p in await self._positions_all() if p.magic == self.magic]

    async def _position(self, ticket: int) -> Position | None:
        if type(ticket) is not int:
            raise InvalidOrder(f"ticket must be an int, got {ticket!r}")
        clock = self.clock
        found: list[Position] = await self._read(
            "positions_get",
            lambda m: m.positions_get(ticket=ticket),
            lambda raw: [to_position(p, clock) for p in raw],
            empty=[],
        )
        found = [p for p in found if p.ticket == ticket]
        return found[0] if found else None

    async def _own_position(self, ticket: int) -> Position:
        pos = await self._position(ticket)
        if pos is None or pos.symbol != self.symbol:
            raise OrderRejected(
                BrokerErrorKind.NOT_FOUND, f"no open {self.symbol} position with ticket {ticket}"
            )
        if pos.magic != self.magic:
            raise OrderRejected(
                BrokerErrorKind.NOT_FOUND,
                f"position {ticket} belongs to magic {pos.magic}, not this bot ({self.magic}); not touching it",
            )
        return pos

    async def _deals(self, what: str, fetch: Callable[[Any], Any]) -> list[Deal]:
        clock = self.clock
        deals: list[Deal] = await self._read(
            what, fetch, lambda raw: [d for d in (to_deal(x, clock) for x in raw) if d], empty=[]
        )
        return sorted(deals, key=lambda d: (d.time, d.ticket))

    async def deals_since(self, since: datetime) -> list[Deal]:
        if since.tzinfo is None:
            raise ValueError("deals_since needs an aware datetime (UTC)")
        # Server-clock epochs: widen by a day on both sides, then filter exactly in UTC.
        lo = self.clock.utc_to_epoch(since) - 86_400
        hi = self.clock.utc_to_epoch(self._now()) + 86_400
        deals = await self._deals("history_deals_get", lambda m: m.history_deals_get(int(lo), int(hi)))
        return [d for d in deals if d.magic == self.magic and d.symbol == self.symbol and d.time >= since]

    # ---- trading ----------------------------------------------------------------------------------

    def _fillings(self, spec: SymbolSpec, exemode: int) -> list[int]:
        modes = list(filling_candidates(spec.filling_modes, exemode))
        if self._filling_winner in modes:
            modes.remove(self._filling_winner)
            modes.insert(0, self._filling_winner)
        return modes

    async def _send(self, request: dict[str, Any], what: str) -> SendReply:
        assert_plain(request)

        try:
            return await self._get(what, lambda m: m.order_send(request), to_send_reply)
        except ConnectionLost:
            raise
        except BrokerError as exc:
            if exc.kind is BrokerErrorKind.TIMEOUT:
                raise
            if exc.code in C.NOT_SENT_LAST_ERRORS:
                raise OrderRejected(exc.kind, exc.detail, exc.code) from exc
            # None with any other last_error (e.g. -1 'Terminal: Call failed'): the request may have
            # reached the server; the caller reconciles instead of trusting the None
            raise BrokerError(exc.kind, f"{exc.detail}; outcome unknown", exc.code) from exc

    def _deal_request(
        self,
        side: Side,
        volume: float,
        price: float,
        sl: float,
        tp: float,
        filling: int,
        comment: str,
        position: int = 0,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "action": C.TRADE_ACTION_DEAL,
            "symbol": self.symbol,
            "volume": float(volume),
            "type": C.ORDER_TYPE_BUY if side is Side.BUY else C.ORDER_TYPE_SELL,
            "price": float(price),
            "sl": float(sl),
            "tp": float(tp),
            "deviation": self.deviation,
            "magic": self.magic,
            "comment": comment,
            "type_time": C.ORDER_TIME_GTC,
            "type_filling": int(filling),
        }
        if position:
            request["position"] = int(position)
        return request

    async def open_market(
        self, side: Side, volume: float, sl: float, tp: float, comment: str = ""
    ) -> OrderResult:
        """Open at market with broker-side SL/TP (0.0 = none). Validated first: a bad order sends nothing.

        When the server refuses the stops (10016) they are widened to its limit once and the volume is cut
        so that no more money is at risk than asked (refused when that is below the minimum lot); the
        result carries the stops and volume really placed. Orders go one at a time (see `_order_lock`).
        """
        side = Side(side)
        async with self._order_lock:
            await self._ready()
            return await self._open_market(side, volume, sl, tp, comment)

    async def _open_market(
        self, side: Side, volume: float, sl: float, tp: float, comment: str
    ) -> OrderResult:
        spec, exemode = await self._spec_and_exemode()
        check_trade_mode(spec, side, closing=False)
        tick = await self.tick()
        lots = self._validate_open(spec, side, tick, volume, sl, tp)
        sl, tp = (spec.round_price(sl) if sl else 0.0), (spec.round_price(tp) if tp else 0.0)
        asked_price, asked_sl = tick.price_to_open(side), sl
        text = clean_comment(comment)
        what = f"open {side} {lots:g} {self.symbol}"
        before = await snapshot_before_open(self)
        fillings = self._fillings(spec, exemode)
        fill_idx, price_tries, widened = 0, 0, False
        while True:
            price = tick.price_to_open(side)
            request = self._deal_request(side, lots, price, sl, tp, fillings[fill_idx], text)
            try:
                reply = await self._send(request, what)
            except (ConnectionLost, BrokerError) as exc:
                if isinstance(exc, OrderRejected):
                    raise
                return await reconcile_open(self, exc, before, side, lots, text, sl, tp)
            rc = reply.retcode
            if rc in C.SUCCESS_RETCODES:
                self._filling_winner = fillings[fill_idx]
                result = await self._fill_result(reply, side, lots, text, fallback_time=tick.time)
                return replace(result, sl=sl, tp=tp)
            if rc in C.UNKNOWN_OUTCOME_RETCODES:
                cause = retcode_error(rc, reply.comment, what)
                return await reconcile_open(self, cause, before, side, lots, text, sl, tp)
            if rc == C.TRADE_RETCODE_INVALID_FILL and fill_idx + 1 < len(fillings):
                fill_idx += 1
                continue
            if rc in C.FRESH_PRICE_RETCODES and price_tries < self.price_retries:
                price_tries += 1
                tick = await self.tick()
                self._validate_open(spec, side, tick, lots, sl, tp)
                log.info("MT5 %s: retcode %d, retrying at a fresh price", what, rc)
                continue
            if rc == C.TRADE_RETCODE_INVALID_STOPS and self.widen_invalid_stops and not widened:
                widened = True
                spec, _ = await self._spec_and_exemode()
                tick = await self.tick()
                new_sl, new_tp = widen_stops(spec, side, tick, sl, tp)
                if (new_sl, new_tp) != (sl, tp):
                    new_lots = resize_for_stop(
                        spec, side, lots, asked_price, asked_sl, tick.price_to_open(side), new_sl
                    )
                    if new_lots <= 0:
                        raise OrderRejected(
                            BrokerErrorKind.INVALID_STOPS,
                            f"{what}: the server refused SL {sl}; the nearest it accepts, {new_sl}, would risk "
                            f"more than asked even at the minimum lot {spec.volume_min:g}",
                            rc,
                        )
                    log.warning(
                        "MT5 %s: invalid stops, widening SL %s->%s TP %s->%s, volume %g->%g",
                        what,
                        sl,
                        new_sl,
                        tp,
                        new_tp,
                        lots,
                        new_lots,
                    )
                    sl, tp, lots = new_sl, new_tp, new_lots
                    continue
            raise retcode_error(rc, reply.comment, what)

    def _validate_open(
        self, spec: SymbolSpec, side: Side, tick: Tick, volume: float, sl: float, tp: float
    ) -> float:
        lots = validate_order(spec, side, volume, tick.price_to_open(side), sl, tp)
        # the server checks stops against the closing price (bid for a BUY): a stop inside the spread fails
        validate_order(spec, side, lots, tick.price_to_close(side), sl, tp)
        return lots

    async def _fill_result(
        self,
        reply: SendReply,
        side: Side,
        requested: float,
        comment: str,
        fallback_time: datetime,
        position: int = 0,
    ) -> OrderResult:
        """The OrderResult of a fill; the deal (by order ticket) gives the position ticket and time."""
        order = reply.order
        try:
            deals = await self._deals("history_deals_get", lambda m: m.history_deals_get(ticket=order))
        except BrokerError:
            deals = []
        deal = next((d for d in deals if d.ticket == reply.deal), deals[0] if deals else None)
        volume = reply.volume if reply.volume > 0 else (deal.volume if deal else requested)
        price = reply.price if reply.price > 0 else (deal.price if deal else 0.0)
        return OrderResult(
            ticket=position or (deal.position_ticket if deal else order),
            side=side,
            volume=volume,
            price=price,
            time=deal.time if deal else fallback_time,
            order=order,
            deal=reply.deal,
            requested_volume=requested,
            comment=comment,
        )

    async def close_position(
        self, ticket: int, volume: float | None = None, comment: str = ""
    ) -> OrderResult:
        """Close fully (volume None) or partly by an opposite deal naming the position.

        The result's `side` is the closing deal's direction (SELL closes a BUY), as in `Deal.side`.
        """
        async with self._order_lock:
            await self._ready()
            return await self._close_position(ticket, volume, comment)

    async def _close_position(self, ticket: int, volume: float | None, comment: str) -> OrderResult:
        pos = await self._own_position(ticket)
        spec, exemode = await self._spec_and_exemode()
        check_trade_mode(spec, pos.side, closing=True)
        lots = close_volume(spec, pos, volume)
        text = clean_comment(comment)
        deal_side = pos.side.opposite
        what = f"close {lots:g} of position {ticket}"
        fillings = self._fillings(spec, exemode)
        fill_idx, price_tries = 0, 0
        tick = await self.tick()
        while True:
            request = self._deal_request(
                deal_side,
                lots,
                tick.price_to_close(pos.side),
                0.0,
                0.0,
                fillings[fill_idx],
                text,
                position=ticket,
            )
            del request["sl"], request["tp"]
            try:
                reply = await self._send(request, what)
            except (ConnectionLost, BrokerError) as exc:
                if isinstance(exc, OrderRejected):
                    raise
                return await reconcile_close(self, exc, pos, lots)
            rc = reply.retcode
            if rc in C.SUCCESS_RETCODES:
                self._filling_winner = fillings[fill_idx]
                return await self._fill_result(reply, deal_side, lots, text, tick.time, position=ticket)
            if rc in C.UNKNOWN_OUTCOME_RETCODES or rc == C.TRADE_RETCODE_POSITION_CLOSED:
                return await reconcile_close(self, retcode_error(rc, reply.comment, what), pos, lots)
            if rc == C.TRADE_RETCODE_INVALID_FILL and fill_idx + 1 < len(fillings):
                fill_idx += 1
                continue
            if rc in C.FRESH_PRICE_RETCODES and price_tries < self.price_retries:
                price_tries += 1
                tick = await self.tick()
                continue
            raise retcode_error(rc, reply.comment, what)

    async def modify_position(self, ticket: int, sl: float, tp: float) -> None:
        """Set SL/TP at the broker with TRADE_ACTION_SLTP (0.0 removes one); unchanged values are fine."""
        async with self._order_lock:
            await self._ready()
            await self._modify_position(ticket, sl, tp)

    async def _modify_position(self, ticket: int, sl: float, tp: float) -> None:
        pos = await self._own_position(ticket)
        spec, _ = await self._spec_and_exemode()
        tick = await self.tick()
        validate_order(spec, pos.side, pos.volume, tick.price_to_close(pos.side), sl, tp)
        sl, tp = (spec.round_price(sl) if sl else 0.0), (spec.round_price(tp) if tp else 0.0)
        request = {
            "action": C.TRADE_ACTION_SLTP,
            "symbol": self.symbol,
            "position": int(ticket),
            "sl": float(sl),
            "tp": float(tp),
            "magic": self.magic,
        }
        what = f"modify position {ticket} SL {sl} TP {tp}"
        try:
            reply = await self._send(request, what)
        except (ConnectionLost, BrokerError) as exc:
            if isinstance(exc, OrderRejected):
                raise
            await reconcile_modify(self, exc, ticket, sl, tp)
            return
        if reply.retcode in (C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_NO_CHANGES):
            return
        if reply.retcode in C.UNKNOWN_OUTCOME_RETCODES:
            await reconcile_modify(self, retcode_error(reply.retcode, reply.comment, what), ticket, sl, tp)
            return
        raise retcode_error(reply.retcode, reply.comment, what)
