"""Sending a decided entry: the stops it is placed with (the minimum distance, the emergency cap), the
order, and what the broker's answer leaves behind: a position and its journal row, a refusal, an
outcome unknown (matched if it fills later), or a stop the broker moved (closed at once).

`OrderEntry` is a part of `TradingEngine` (a mixin: it reads and sets the engine's own state, which
`trading.engine_host.EngineHost` declares).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from trading.analysis import MarketAnalysis
from trading.broker.base import BrokerError, ConnectionLost, OrderRejected
from trading.domain import Position
from trading.engine_host import EngineHost
from trading.events import EventKind
from trading.exits import PositionTracker
from trading.late_fills import UnknownOrder
from trading.records import Decision, OpenedTrade
from trading.risk.sizing import LotSize, moved_stop_refusal


class OrderEntry(EngineHost):
    """The orders of `TradingEngine`."""

    def _stops_for(
        self, side_sign: int, price: float, sl: float, tp: float, lots: float, balance: float
    ) -> tuple[float, float]:
        """Min SL distance and the emergency cap at `emergency_sl_pct` of balance (decision 7)."""
        p = self.params
        dist = (price - sl) * side_sign
        if dist < p.min_sl_distance:
            dist = 2 * p.min_sl_distance
        money_per_unit = self.spec.money_per_price_unit(lots)
        cap = balance * p.emergency_sl_pct / 100 / money_per_unit if money_per_unit > 0 else dist
        dist = min(dist, cap)
        return self.spec.round_price(price - side_sign * dist), self.spec.round_price(tp)

    async def _enter(
        self, decision: Decision, analysis: MarketAnalysis, lot: LotSize, now: datetime
    ) -> Decision:
        """Send the order; the decision comes back marked `order_failed` when the broker refuses it."""
        assert self.state is not None and self.account is not None and analysis.setup is not None
        setup = analysis.setup
        tick = await self.broker.tick()
        price = tick.price_to_open(setup.side)
        sl, tp = self._stops_for(
            setup.side.sign, price, setup.stop_loss, setup.take_profit, lot.lots, self.account.balance
        )
        try:
            fill = await self.broker.open_market(setup.side, lot.lots, sl, tp, comment=self.comment)
        except BrokerError as exc:
            unknown = not isinstance(exc, OrderRejected)
            if unknown:  # the order may still fill: a position that appears later is matched to it (_adopt)
                self._unknown_orders.append(
                    UnknownOrder(
                        decision,
                        self.spec.name,
                        setup.side,
                        lot.lots,
                        sl,
                        tp,
                        self.broker.magic,
                        self.comment,
                        now,
                        str(exc),
                        lot.risk_money,
                    )
                )
            why = (
                f"outcome unknown, taken for failed: {exc}" if unknown else f"broker refused the order: {exc}"
            )
            failed = replace(decision, action="order_failed", reason=why)
            await self.recorder.record_order_failed(failed)
            self.last_decision = failed
            self._publish(
                EventKind.ORDER_FAILED,
                f"{setup.side} {lot.lots:g} failed: {exc}",
                error=str(exc),
                decision=failed,
            )
            if isinstance(exc, ConnectionLost):
                raise
            return failed
        placed_sl = sl if fill.sl is None else fill.sl  # the broker may have moved a refused stop
        placed_tp = tp if fill.tp is None else fill.tp
        refusal = moved_stop_refusal(
            side_sign=setup.side.sign,
            price=fill.price,
            planned_sl=sl,
            placed_sl=placed_sl,
            planned_lots=lot.lots,
            placed_lots=fill.volume,
            spec=self.spec,
        )
        sl, tp = placed_sl, placed_tp
        trade = OpenedTrade(
            ticket=fill.ticket,
            side=setup.side,
            volume=fill.volume,
            open_price=fill.price,
            open_time=fill.time,
            sl=sl,
            tp=tp,
            magic=self.broker.magic,
            comment=self.comment,
            decision_id=decision.id,
            requested_price=price,
            risk_money=lot.risk_money,
            extra={"setup": setup.reason, "regime": analysis.regime.name, "session": analysis.session.name},
        )
        await self.recorder.record_open(trade)
        self.state = replace(self.state, last_entry_time=now)
        self.positions[fill.ticket] = Position(
            ticket=fill.ticket,
            symbol=self.spec.name,
            side=setup.side,
            volume=fill.volume,
            open_price=fill.price,
            open_time=fill.time,
            sl=sl,
            tp=tp,
            magic=self.broker.magic,
            comment=self.comment,
        )
        self.trackers[fill.ticket] = PositionTracker(fill.ticket)
        await self._save_state()
        self._publish(
            EventKind.TRADE_OPENED,
            f"opened #{fill.ticket} {setup.side} {fill.volume:g} at {fill.price:.2f} SL {sl:.2f} TP {tp:.2f}",
            trade=trade,
            decision=decision,
        )
        if refusal is not None:  # booked as opened, then closed at once: the journal keeps both fills
            await self._close(self.positions[fill.ticket], "stop_moved", refusal, by="engine")
        return decision
