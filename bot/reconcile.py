"""The start-up reconcile: the journal against the broker, before the first tick.

A position the broker holds and the journal lacks is adopted; one the journal holds open and the
broker no longer has is booked from the broker's deals (or, with no closing deal, closed at no profit
and flagged); every closed trade of the last RECONCILE_DAYS is checked against its deals to the cent.
Each finding is a note in the start-up message, and corrections are audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from trading.domain import ClosedTrade, Deal, DealEntry, Position
from trading.engine import DEAL_LOOKBACK, PL_SOURCE, TradingEngine, closed_trade_from_deals

if TYPE_CHECKING:
    from bot.store import Journal
    from bot.store.records import TradeRecord
    from trading.broker.base import Broker

RECONCILE_DAYS = 31  # closed trades checked against the broker's deals at every start


class StartupReconcile:
    def __init__(
        self, journal: Journal, broker: Broker, engine: TradingEngine, clock: Callable[[], datetime]
    ) -> None:
        self.journal, self.broker, self.engine, self.clock = journal, broker, engine, clock
        self.notes: list[str] = []

    async def run(self) -> list[str]:
        """Adopt unknown positions, book the ones closed while the bot was down; the notes for the
        start-up message, one a line."""
        open_in_journal = {t.ticket: t for t in await self.journal.open_trades()}
        at_broker = dict(self.engine.positions)
        for ticket, pos in at_broker.items():
            if ticket not in open_in_journal:
                await self.journal.record_trade_open(pos)
                self.notes.append(
                    f"adopted #{ticket} {pos.side} {pos.volume:g} at {pos.open_price:.2f} (not in the journal)"
                )
        missing = {ticket: t for ticket, t in open_in_journal.items() if ticket not in at_broker}
        await self._missing(missing)
        await self._deals()
        return self.notes

    async def _missing(self, missing: dict[int, TradeRecord]) -> None:
        if not missing:
            return
        since = min(t.open_time for t in missing.values()) - DEAL_LOOKBACK
        deals: dict[int, list[Deal]] = defaultdict(list)
        for d in await self.broker.deals_since(since):
            deals[d.position_ticket].append(d)
        for ticket, t in missing.items():
            pos = Position(
                ticket=ticket,
                symbol=t.symbol,
                side=t.side,
                volume=t.volume,
                open_price=t.open_price,
                open_time=t.open_time,
                sl=t.sl or 0.0,
                tp=t.tp or 0.0,
                magic=t.magic,
                comment=t.comment,
            )
            trade = closed_trade_from_deals(
                pos, deals.get(ticket, []), "broker", "closed at the broker while the bot was down"
            )
            if trade is not None:  # booked now, from the deals: not left to a tick that may never come
                await self.engine.book_close_from_deals(trade)
                self.notes.append(
                    f"#{ticket} closed while the bot was down: booked from the broker's deals "
                    f"(${trade.profit:+.2f})"
                )
                continue
            # no closing deal (another account, a new paper account, history purged): the P/L is unknown.
            # Close the row at its open price with no profit, and do not count it in today's risk.
            await self.journal.record_trade_close(
                ClosedTrade(
                    ticket=ticket,
                    symbol=t.symbol,
                    side=t.side,
                    volume=t.volume,
                    open_price=t.open_price,
                    close_price=t.open_price,
                    open_time=t.open_time,
                    close_time=max(self.clock(), t.open_time),
                    profit=0.0,
                    reason="missing_at_broker",
                    sl=t.sl or 0.0,
                    tp=t.tp or 0.0,
                    extra={"detail": "open in the journal, not at the broker, no closing deal found"},
                )
            )
            self.notes.append(
                f"#{ticket} is open in the journal but unknown to the broker (no closing deal): "
                "closed in the journal with P/L unknown (booked as 0, not counted); check the "
                "broker's history"
            )

    async def _deals(self) -> None:
        """Every closed trade of the last RECONCILE_DAYS equals its broker deals to the cent: a close
        booked at an estimate (or wrongly) is corrected and audited, a trade the broker has and the
        journal lacks is booked; closes whose deals have not appeared yet stay watched by the engine."""
        since = self.clock() - timedelta(days=RECONCILE_DAYS)
        by_position: dict[int, list[Deal]] = defaultdict(list)
        for d in await self.broker.deals_since(since):
            by_position[d.position_ticket].append(d)
        for ticket, deals in sorted(by_position.items()):
            ins = [d for d in deals if d.entry is DealEntry.IN]
            if ticket in self.engine.positions or not ins or all(d.entry is DealEntry.IN for d in deals):
                continue  # still open, or opened before the window (its entry charges are not all here)
            row = await self.journal.trade_by_ticket(ticket)
            if row is not None and row.is_open:
                continue  # back in the engine's book: the next tick books it from these deals
            first = min(ins, key=lambda d: (d.time, d.ticket))
            pos = Position(
                ticket=ticket,
                symbol=first.symbol,
                side=first.side,
                volume=row.volume if row else round(sum(d.volume for d in ins), 8),
                open_price=row.open_price if row else first.price,
                open_time=row.open_time if row else first.time,
                sl=row.sl if row else 0.0,
                tp=row.tp if row else 0.0,
                magic=first.magic,
            )
            if row is None:
                trade = closed_trade_from_deals(
                    pos, deals, "broker", "opened and closed while the bot was down"
                )
                assert trade is not None
                await self.engine.book_close_from_deals(trade)
                await self.journal.audit(
                    "reconcile",
                    user_id=None,
                    chat_id=None,
                    allowed=True,
                    args=f"#{ticket}",
                    result=f"booked from the broker's deals: {trade.profit:+.2f} (not in the journal)",
                )
                self.notes.append(
                    f"#{ticket} opened and closed at the broker while the bot was down: "
                    f"booked from its deals (${trade.profit:+.2f})"
                )
                continue
            trade = closed_trade_from_deals(
                pos, deals, row.exit_reason or "broker", str(row.extra.get("detail", ""))
            )
            assert trade is not None
            booked = float(row.profit or 0.0)
            if await self.engine.correct_close(trade, booked, row.close_time):
                self.notes.append(
                    f"#{ticket} P/L corrected from the broker's deals: ${booked:+.2f} → "
                    f"${trade.profit:+.2f} (audited)"
                )
        for t in await self.journal.closed_trades(since=since):
            if t.extra.get(PL_SOURCE) == "estimate" and t.ticket not in by_position:
                self.engine.watch_estimate(t.to_closed_trade())
