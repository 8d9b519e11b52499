"""The engine's `Recorder` over the SQLite journal: every record is committed before its event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from bot.store import Journal
from bot.store.health import JournalWriteError
from trading.domain import ClosedTrade, Position
from trading.events import EventKind
from trading.records import Decision, OpenedTrade
from trading.timezones import utc_now

log = logging.getLogger(__name__)


class JournalRecorder:
    def __init__(self, journal: Journal, symbol: str = "XAUUSD") -> None:
        self.journal = journal
        self.symbol = symbol

    async def record_decision(self, decision: Decision) -> int | None:
        return await self.journal.record_decision(
            decision.bar_time,
            decision.action,
            side=decision.side,
            p_up=decision.p_up,
            regime=decision.regime,
            confidence=max(decision.p_up, 1 - decision.p_up) if decision.p_up is not None else None,
            threshold=decision.threshold,
            reason=decision.reason,
            gates=decision.gates,
            lot=decision.lot or None,
            setup=decision.setup_reason,
            features=decision.features,
        )

    async def record_order_failed(self, decision: Decision) -> None:
        if decision.id is not None:
            await self.journal.update_decision(decision.id, action=decision.action, reason=decision.reason)

    async def record_open(self, trade: OpenedTrade) -> None:
        await self.journal.record_trade_open(
            Position(
                ticket=trade.ticket,
                symbol=self.symbol,
                side=trade.side,
                volume=trade.volume,
                open_price=trade.open_price,
                open_time=trade.open_time,
                sl=trade.sl,
                tp=trade.tp,
                magic=trade.magic,
                comment=trade.comment,
            ),
            decision_id=trade.decision_id,
        )

    async def record_late_fill(self, decision: Decision, trade: OpenedTrade) -> None:
        await self.record_open(trade)
        await self.record_order_failed(decision)

    async def record_sl_change(self, ticket: int, time: datetime, sl: float, tp: float, reason: str) -> None:
        with contextlib.suppress(KeyError):  # a position the journal never saw: nothing to update
            await self.journal.record_trade_update_sl_tp(ticket, sl, tp, reason=reason, when=time)

    async def record_close(self, trade: ClosedTrade) -> bool:
        return await self.journal.record_trade_close(trade)

    async def correct_close(self, trade: ClosedTrade) -> bool:
        return await self.journal.correct_trade_close(trade) is not None

    async def save_state(self, state: dict[str, Any]) -> None:
        await self.journal.save_state({"engine": state}, now=utc_now())

    async def load_state(self) -> dict[str, Any] | None:
        saved = await self.journal.load_state()
        engine = saved.get("engine")
        return engine if isinstance(engine, dict) else None

    async def keep_approvals(self, queue: asyncio.Queue[Any]) -> None:
        """Store every approval request and answer the bus carries, until None (shutdown) arrives."""
        while True:
            event = await queue.get()
            if event is None:  # shutdown: everything published before it is stored
                return
            try:
                approval = event.data.get("approval")
                if approval is None or event.kind not in (
                    EventKind.RISK_CHANGE_PROPOSED,
                    EventKind.APPROVAL_RESOLVED,
                ):
                    continue
                stored = (
                    await self.journal.update_approval(approval)
                    if event.kind is EventKind.APPROVAL_RESOLVED
                    else False
                )
                if not stored:
                    await self.journal.save_approval(approval)
            except JournalWriteError:
                pass  # the journal logged and alarmed once for the outage
            except Exception:
                log.exception("could not store approval event %s", event.kind)
