"""Booking an open position's close: closing it at the broker, the trade as the broker's deals say
(or an estimate, re-read until they appear), the risk state counting it, the journal, then the event.

`CloseBooking` is a part of `TradingEngine` (a mixin: it reads and sets the engine's own state, which
`trading.engine_host.EngineHost` declares).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from trading.broker.base import DEAL_ORDER, BrokerError, ConnectionLost
from trading.domain import ClosedTrade, Deal, DealEntry, DealReason, Position
from trading.engine_host import EngineHost
from trading.events import EventKind
from trading.exits import PositionTracker
from trading.late_fills import expired, late_fill_note, match_late_fill
from trading.records import OpenedTrade
from trading.risk.modes import correct_counted_close, record_close

log = logging.getLogger("trading.engine")

# closes a person asked for (/close, the close buttons, /closeall): they count in the daily and total
# P/L limits, but not in the strategy's loss streak, and they restart the entry cooldown
HAND_CLOSES = frozenset({"manual", "close_all"})
DEAL_LOOKBACK = timedelta(days=1)  # how far before a position's open its deals are searched
ESTIMATE_RECHECK = timedelta(seconds=5)  # how often a close booked at an estimate looks for its deals
ESTIMATE_WATCH = timedelta(days=1)  # then the start-up reconcile is left to find them (bounded work)
PL_SOURCE = "pl_source"  # ClosedTrade.extra key: "deals" (the broker's) or "estimate" (deals not seen yet)


def closed_trade_from_deals(pos: Position, deals: list[Deal], name: str, reason: str) -> ClosedTrade | None:
    """The trade as the broker booked it: P/L = profit + commission + swap + fee of every deal of the
    position (the entry deal's charges belong to the trade too); None while no closing deal exists."""
    mine = sorted([d for d in deals if d.position_ticket == pos.ticket], key=DEAL_ORDER)
    outs = [d for d in mine if d.entry is DealEntry.OUT]
    if not outs:
        return None
    last = outs[-1]
    if last.reason is DealReason.SL and name == "broker":
        name = "broker_sl"
    elif last.reason is DealReason.TP and name == "broker":
        name = "broker_tp"
    elif last.reason is DealReason.STOP_OUT:
        name = "stop_out"
    ins = [d for d in mine if d.entry is DealEntry.IN]
    open_time = min([pos.open_time, *(d.time for d in ins)])
    return ClosedTrade(
        ticket=pos.ticket,
        symbol=pos.symbol,
        side=pos.side,
        volume=pos.volume,
        open_price=pos.open_price,
        close_price=last.price,
        open_time=open_time,
        close_time=max(last.time, open_time),
        profit=round(sum(d.net for d in mine), 2),
        reason=name,
        sl=pos.sl,
        tp=pos.tp,
        extra={
            "detail": reason,
            PL_SOURCE: "deals",
            "deals": [d.ticket for d in mine],
            "commission": round(sum(d.commission for d in mine), 2),
            "swap": round(sum(d.swap for d in mine), 2),
            "fee": round(sum(d.fee for d in mine), 2),
        },
    )


class CloseBooking(EngineHost):
    """Closing, detecting and booking closes; correcting a close booked at an estimate."""

    async def _book_closed_while_down(self, saved: list[Position], live: set[int]) -> None:
        """Positions open at the last save that the broker closed while the bot was down count too (decision 7)."""
        for pos in saved:
            if pos.ticket in live:
                continue
            deals = await self._position_deals(pos)
            if any(d.entry is DealEntry.OUT for d in deals):
                trade = await self._closed_trade(
                    pos, "broker", "closed at the broker while the bot was down", None, None
                )
                await self._book_close(trade, self.account.balance if self.account else 0.0, by="broker")

    async def _close(self, pos: Position, name: str, reason: str, by: str) -> ClosedTrade | None:
        if pos.ticket in self._closing:
            return None
        self._closing.add(pos.ticket)
        try:
            balance_before = self.account.balance if self.account else 0.0
            try:
                fill = await self.broker.close_position(pos.ticket, comment=name[:24])
            except ConnectionLost:
                raise
            except BrokerError as exc:
                self._publish(
                    EventKind.ORDER_FAILED,
                    f"close #{pos.ticket} failed: {exc}",
                    ticket=pos.ticket,
                    error=str(exc),
                )
                return None
            trade = await self._closed_trade(pos, name, reason, fill.price, fill.time)
            await self._book_close(trade, balance_before, by)
            return trade
        finally:
            self._closing.discard(pos.ticket)

    async def _position_deals(self, pos: Position) -> list[Deal]:
        # a lookback, not the open time: a broker (or a restarted paper market) may date a fill earlier
        since = pos.open_time - DEAL_LOOKBACK
        return [d for d in await self.broker.deals_since(since) if d.position_ticket == pos.ticket]

    async def _closed_trade(
        self, pos: Position, name: str, reason: str, price: float | None, time: datetime | None
    ) -> ClosedTrade:
        mine = await self._position_deals(pos)
        trade = closed_trade_from_deals(pos, mine, name, reason)
        if trade is not None:
            return trade
        # the broker shows no closing deal (yet): the best estimate is the last price, never 0; it is
        # flagged so the real deal is read again (`_reread_estimates`, and the start-up reconcile)
        if price is None:
            last = self.last_tick.price_to_close(pos.side) if self.last_tick else 0.0
            price = pos.current_price or last or pos.open_price
        entry_costs = sum(d.net for d in mine if d.entry is DealEntry.IN)
        profit = round(
            (price - pos.open_price) * pos.side.sign * self.spec.money_per_price_unit(pos.volume)
            + entry_costs,
            2,
        )
        return ClosedTrade(
            ticket=pos.ticket,
            symbol=pos.symbol,
            side=pos.side,
            volume=pos.volume,
            open_price=pos.open_price,
            close_price=price,
            open_time=pos.open_time,
            close_time=max(time or self.clock(), pos.open_time),
            profit=profit,
            reason=name,
            sl=pos.sl,
            tp=pos.tp,
            extra={"detail": reason, PL_SOURCE: "estimate", "commission": round(entry_costs, 2)},
        )

    async def _book_close(self, trade: ClosedTrade, balance_before: float, by: str) -> None:
        """Count the close in the risk state, store it, then report it (decision 7: any close counts)."""
        assert self.state is not None
        self.positions.pop(trade.ticket, None)
        self.trackers.pop(trade.ticket, None)
        self._judge_inputs.pop(trade.ticket, None)
        if not await self.recorder.record_close(trade):
            return
        if trade.extra.get(PL_SOURCE) == "estimate":
            self._estimated[trade.ticket] = trade
        self.account = await self.broker.account()
        now = self.clock()
        by_hand = trade.reason in HAND_CLOSES
        self.state = record_close(
            self.state,
            self.limits,
            trade.profit,
            self.account.balance,
            now,
            by_hand=by_hand,
            closed_at=trade.close_time,
        )
        if by_hand:  # the person wanted out: no new entry for the entry cooldown (300 s), as after an entry
            self.state = replace(self.state, last_entry_time=max(now, self.state.last_entry_time or now))
        else:
            self.recent_profits.append(trade.profit)  # the strategy's own results (sizing), not a person's
        await self._save_state()
        self._publish(
            EventKind.TRADE_CLOSED,
            f"closed #{trade.ticket} {trade.side} {trade.volume:g} at {trade.close_price:.2f}: "
            f"${trade.profit:+.2f} ({trade.reason})",
            trade=trade,
            balance_before=balance_before,
            balance_after=self.account.balance,
            by=by,
        )
        await self._check_mode_change()

    async def _detect_broker_closes(self, positions: list[Position], now: datetime) -> None:
        if self._estimated and (
            self._last_deal_check is None
            or now - self._last_deal_check >= ESTIMATE_RECHECK
            or now < self._last_deal_check
        ):
            self._last_deal_check = now
            await self._reread_estimates(now)
        live = {p.ticket for p in positions}
        gone = [p for t, p in self.positions.items() if t not in live and t not in self._closing]
        for pos in gone:
            trade = await self._closed_trade(pos, "broker", "closed at the broker", None, None)
            balance_after = (
                self.account.balance if self.account else 0.0
            )  # fetched after the broker closed it
            await self._book_close(trade, balance_after - trade.profit, by="broker")
        for p in positions:  # positions opened elsewhere with our magic (adopted) get a tracker too
            if p.ticket not in self.positions:
                self.positions[p.ticket] = p
                self.trackers.setdefault(p.ticket, PositionTracker(p.ticket))
                await self._adopt(p, now)

    async def _adopt(self, pos: Position, now: datetime) -> None:
        """A position of ours the engine did not open in this run: the late fill of an order booked as
        failed (journaled against its decision, now `filled_late`), or a stranger; journaled and told."""
        for gone in expired(self._unknown_orders, now):
            self._unknown_orders.remove(gone)
        order = match_late_fill(pos, self._unknown_orders)
        what = f"#{pos.ticket} {pos.side} {pos.volume:g} at {pos.open_price:.2f}"
        trade = OpenedTrade(
            ticket=pos.ticket,
            side=pos.side,
            volume=pos.volume,
            open_price=pos.open_price,
            open_time=pos.open_time,
            sl=pos.sl,
            tp=pos.tp,
            magic=pos.magic,
            comment=pos.comment,
        )
        if order is None:
            await self.recorder.record_open(trade)
            self._publish(
                EventKind.INFO,
                f"adopted {what}: a position with this bot's magic number that it did "
                "not open in this run; its exits are managed from now on",
                trade=trade,
            )
            return
        self._unknown_orders.remove(order)
        note = late_fill_note(order, pos)
        decision = replace(order.decision, action="filled_late", reason=note)
        trade = replace(
            trade,
            decision_id=decision.id,
            risk_money=order.risk_money,
            extra={"setup": decision.setup_reason, "regime": decision.regime, "late": note},
        )
        await self.recorder.record_late_fill(decision, trade)
        if self.last_decision is not None and self.last_decision.id == decision.id:
            self.last_decision = decision
        assert self.state is not None
        self.state = replace(self.state, last_entry_time=max(now, self.state.last_entry_time or now))
        await self._save_state()
        self._publish(
            EventKind.TRADE_OPENED,
            f"opened {what} SL {pos.sl:.2f} TP {pos.tp:.2f} ({note})",
            trade=trade,
            decision=decision,
            late=note,
        )

    def watch_estimate(self, trade: ClosedTrade) -> None:
        """A close booked at an estimated price (before a restart, say): re-read its deals until they appear."""
        self._estimated[trade.ticket] = trade

    async def _reread_estimates(self, now: datetime) -> None:
        for ticket, booked in list(self._estimated.items()):
            if now - booked.close_time > ESTIMATE_WATCH:
                log.warning(
                    "#%s: no closing deal %s after the close; left to the start-up reconcile",
                    ticket,
                    ESTIMATE_WATCH,
                )
                del self._estimated[ticket]
                continue
            pos = Position(
                ticket=ticket,
                symbol=booked.symbol,
                side=booked.side,
                volume=booked.volume,
                open_price=booked.open_price,
                open_time=booked.open_time,
                sl=booked.sl,
                tp=booked.tp,
            )
            trade = closed_trade_from_deals(
                pos, await self._position_deals(pos), booked.reason, str(booked.extra.get("detail", ""))
            )
            if trade is not None:
                await self.correct_close(trade, booked.profit, booked.close_time)

    async def correct_close(
        self, trade: ClosedTrade, booked_profit: float, booked_at: datetime | None = None
    ) -> bool:
        """A close booked at `booked_profit` (at `booked_at`) is really `trade` (its broker deals): store
        the correction, correct today's figures (`correct_counted_close`), tell the user. False when
        nothing differed."""
        assert self.state is not None
        self._estimated.pop(trade.ticket, None)
        if not await self.recorder.correct_close(trade):
            return False
        closes_after = None  # the strategy's closes booked after it (a hand close is not among them)
        for i in range(len(self.recent_profits) - 1, -1, -1):
            if self.recent_profits[i] == booked_profit:
                self.recent_profits[i] = trade.profit
                closes_after = len(self.recent_profits) - 1 - i
                break
        self.state = correct_counted_close(
            self.state, booked_profit, booked_at, trade.profit, trade.close_time, closes_after
        )
        self.account = await self.broker.account()
        await self._save_state()
        self._publish(
            EventKind.INFO,
            f"#{trade.ticket} P/L corrected from the broker's deals: "
            f"${booked_profit:+.2f} → ${trade.profit:+.2f}",
            trade=trade,
            booked=booked_profit,
        )
        await self._check_mode_change()
        return True

    async def book_close_from_deals(self, trade: ClosedTrade) -> None:
        """A close the broker has and the journal lacks (opened and closed while the bot was down)."""
        balance = self.account.balance if self.account else 0.0
        await self._book_close(trade, balance - trade.profit, by="broker")
