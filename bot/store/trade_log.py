"""The journal's trades: opened, SL/TP moves, closed (and corrected to the broker's booking), read
back, the day's figures and the CSV export. Every write is checked before it touches the file."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import convert
from bot.store.database import JournalDatabase
from bot.store.records import TRADE_CSV_COLUMNS, DayStats, SlTpChange, TradeRecord
from bot.store.schema import AuditRow, DecisionRow, SlTpHistoryRow, TradeRow
from trading.domain import ClosedTrade, Position, Side
from trading.timezones import WIB


def wib_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00 WIB, next 00:00 WIB) of a WIB calendar day, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=WIB).astimezone(UTC)
    return start, start + timedelta(days=1)


class TradeLog(JournalDatabase):
    """The trades table and its SL/TP history."""

    async def record_trade_open(
        self, position: Position, *, decision_id: int | None = None, now: datetime | None = None
    ) -> bool:
        """Insert the open trade and its first SL/TP. False (nothing written) if the ticket is known."""
        _check_position(position)
        now = convert.aware(now, "now")
        async with self._write() as s:
            if await _trade_row(s, position.ticket) is not None:
                return False
            if decision_id is not None and await s.get(DecisionRow, decision_id) is None:
                raise ValueError(f"decision {decision_id} is not in the journal")
            s.add(
                TradeRow(
                    ticket=position.ticket,
                    symbol=position.symbol,
                    side=Side(position.side).value,
                    volume=position.volume,
                    open_time=position.open_time,
                    open_price=position.open_price,
                    sl=position.sl,
                    tp=position.tp,
                    magic=position.magic,
                    comment=position.comment,
                    decision_id=decision_id,
                    status="open",
                    commission=0.0,
                    swap=0.0,
                    extra={},
                    updated_at=now,
                )
            )
            await s.flush()
            s.add(
                SlTpHistoryRow(
                    ticket=position.ticket,
                    time=position.open_time,
                    sl=position.sl,
                    tp=position.tp,
                    reason="open",
                )
            )
        return True

    async def record_trade_update_sl_tp(
        self, ticket: int, sl: float, tp: float, *, reason: str = "", when: datetime | None = None
    ) -> bool:
        """Move SL/TP of an open trade and log the change. False if closed or nothing changed.

        Raises KeyError for a ticket the journal does not know.
        """
        convert.finite(sl, "sl")
        convert.finite(tp, "tp")
        when = convert.aware(when, "when")
        async with self._write() as s:
            row = await _trade_row(s, ticket)
            if row is None:
                raise KeyError(f"trade {ticket} is not in the journal")
            if row.status != "open" or (row.sl == sl and row.tp == tp):
                return False
            row.sl, row.tp, row.updated_at = sl, tp, when
            s.add(SlTpHistoryRow(ticket=ticket, time=when, sl=sl, tp=tp, reason=reason))
        return True

    async def record_trade_close(
        self,
        trade: ClosedTrade,
        *,
        commission: float | None = None,
        swap: float | None = None,
        magic: int = 0,
        comment: str = "",
        now: datetime | None = None,
    ) -> bool:
        """Close the trade row (profit is net). True when written; False if it was already closed.

        A close for a ticket never opened in the journal (opened while the bot was down) inserts a
        complete closed row. commission/swap default to trade.extra["commission"/"swap"] or 0.
        """
        _check_closed(trade)
        extra = convert.jsonable(dict(trade.extra))
        commission = float(commission if commission is not None else extra.get("commission", 0.0))
        swap = float(swap if swap is not None else extra.get("swap", 0.0))
        pips = trade.price_move / self.pip_size
        now = convert.aware(now, "now")
        values = {
            "close_time": trade.close_time,
            "close_price": trade.close_price,
            "exit_reason": trade.reason,
            "profit": trade.profit,
            "commission": commission,
            "swap": swap,
            "pips": round(pips, 4),
            "status": "closed",
            "extra": extra,
            "updated_at": now,
        }
        async with self._write() as s:
            row = await _trade_row(s, trade.ticket)
            if row is not None and row.status == "closed":
                return False
            if row is None:
                s.add(
                    TradeRow(
                        ticket=trade.ticket,
                        symbol=trade.symbol,
                        side=Side(trade.side).value,
                        volume=trade.volume,
                        open_time=trade.open_time,
                        open_price=trade.open_price,
                        sl=trade.sl,
                        tp=trade.tp,
                        magic=magic,
                        comment=comment,
                        **values,
                    )
                )
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        return True

    async def correct_trade_close(
        self, trade: ClosedTrade, *, why: str = "broker deals", now: datetime | None = None
    ) -> float | None:
        """Rewrite a closed trade with the broker's own booking of it (price, time, net P/L, charges)
        and log the correction in the audit log (command "reconcile"), in one transaction.

        Returns the P/L that was stored before; None when the trade is not closed in the journal or
        already says the same to the cent (nothing written).
        """
        _check_closed(trade)
        extra = convert.jsonable(dict(trade.extra))
        commission = round(float(extra.get("commission", 0.0)), 2)
        swap = round(float(extra.get("swap", 0.0)), 2)
        now = convert.aware(now, "now")
        async with self._write() as s:
            row = await _trade_row(s, trade.ticket)
            if row is None or row.status != "closed":
                return None
            old = float(row.profit or 0.0)
            same = (
                round(old, 2) == round(trade.profit, 2)
                and row.close_price == trade.close_price
                and round(row.commission, 2) == commission
                and round(row.swap, 2) == swap
                and (row.extra or {}).get("pl_source") == extra.get("pl_source")
            )
            if same:
                return None
            merged = {**(row.extra or {}), **extra, "booked_profit": old}
            row.close_time, row.close_price = trade.close_time, trade.close_price
            row.profit, row.commission, row.swap = trade.profit, commission, swap
            row.pips = round(trade.price_move / self.pip_size, 4)
            row.exit_reason = (
                trade.reason if row.exit_reason in (None, "broker", "missing_at_broker") else row.exit_reason
            )
            row.extra, row.updated_at = merged, now
            s.add(
                AuditRow(
                    time=now,
                    user_id=None,
                    chat_id=None,
                    command="reconcile",
                    args=f"#{trade.ticket}",
                    result=f"P/L {old:+.2f} -> {trade.profit:+.2f} ({why})",
                    allowed=True,
                )
            )
        return old

    async def trade_by_ticket(self, ticket: int) -> TradeRecord | None:
        async with self._read() as s:
            row = await _trade_row(s, ticket)
            return convert.trade(row) if row else None

    async def open_trades(self) -> list[TradeRecord]:
        """Oldest first."""
        q = select(TradeRow).where(TradeRow.status == "open").order_by(TradeRow.open_time, TradeRow.id)
        async with self._read() as s:
            return [convert.trade(r) for r in (await s.scalars(q)).all()]

    async def trades(self, since: datetime | None = None, limit: int | None = None) -> list[TradeRecord]:
        """All trades, open and closed, newest open time first; since filters open_time."""
        q = select(TradeRow).order_by(TradeRow.open_time.desc(), TradeRow.id.desc())
        if since is not None:
            q = q.where(TradeRow.open_time >= since)
        if limit is not None:
            q = q.limit(limit)
        async with self._read() as s:
            return [convert.trade(r) for r in (await s.scalars(q)).all()]

    async def closed_trades(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[TradeRecord]:
        """Closed trades, newest close first; since filters close_time."""
        q = (
            select(TradeRow)
            .where(TradeRow.status == "closed")
            .order_by(TradeRow.close_time.desc(), TradeRow.id.desc())
        )
        if since is not None:
            q = q.where(TradeRow.close_time >= since)
        if limit is not None:
            q = q.limit(limit)
        async with self._read() as s:
            return [convert.trade(r) for r in (await s.scalars(q)).all()]

    async def sl_tp_history(self, ticket: int) -> list[SlTpChange]:
        q = select(SlTpHistoryRow).where(SlTpHistoryRow.ticket == ticket).order_by(SlTpHistoryRow.id)
        async with self._read() as s:
            return [convert.sl_tp(r) for r in (await s.scalars(q)).all()]

    async def stats_for_day(self, day: date) -> DayStats:
        """Closed trades whose close time falls in the WIB day."""
        start, end = wib_day_bounds(day)
        q = select(
            func.count(TradeRow.id),
            func.coalesce(func.sum(case((TradeRow.profit > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(case((TradeRow.profit < 0, 1), else_=0)), 0),
            func.coalesce(func.sum(TradeRow.profit), 0.0),
        ).where(TradeRow.status == "closed", TradeRow.close_time >= start, TradeRow.close_time < end)
        async with self._read() as s:
            n, wins, losses, profit = (await s.execute(q)).one()
        return DayStats(day=day, trades=int(n), wins=int(wins), losses=int(losses), profit=float(profit))

    async def export_trades_csv(self, path: str | Path | None = None, since: datetime | None = None) -> str:
        """All trades (oldest first) as CSV text; also written atomically to `path` when given."""
        rows = list(reversed(await self.trades(since=since)))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(TRADE_CSV_COLUMNS)
        for r in rows:
            writer.writerow([_csv_cell(getattr(r, name)) for name in TRADE_CSV_COLUMNS])
        text = buf.getvalue()
        if path is not None:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
        return text


async def _trade_row(s: AsyncSession, ticket: int) -> TradeRow | None:
    return await s.scalar(select(TradeRow).where(TradeRow.ticket == ticket))


def _check_position(p: Position) -> None:
    if p.ticket <= 0:
        raise ValueError(f"position ticket must be > 0, got {p.ticket}")
    if not isinstance(p.side, Side):
        raise ValueError(f"position {p.ticket}: side must be a Side, got {p.side!r}")
    if convert.finite(p.volume, f"position {p.ticket} volume") <= 0:
        raise ValueError(f"position {p.ticket}: volume must be > 0, got {p.volume}")
    if convert.finite(p.open_price, f"position {p.ticket} open_price") <= 0:
        raise ValueError(f"position {p.ticket}: open_price must be > 0, got {p.open_price}")
    convert.finite(p.sl, f"position {p.ticket} sl")
    convert.aware(p.open_time, f"position {p.ticket} open_time")
    convert.finite(p.tp, f"position {p.ticket} tp")


def _check_closed(t: ClosedTrade) -> None:
    if t.ticket <= 0:
        raise ValueError(f"trade ticket must be > 0, got {t.ticket}")
    if not isinstance(t.side, Side):
        raise ValueError(f"trade {t.ticket}: side must be a Side, got {t.side!r}")
    for name in ("volume", "open_price", "close_price", "profit", "sl", "tp"):
        convert.finite(getattr(t, name), f"trade {t.ticket} {name}")
    if t.volume <= 0:
        raise ValueError(f"trade {t.ticket}: volume must be > 0, got {t.volume}")
    convert.aware(t.open_time, f"trade {t.ticket} open_time")
    convert.aware(t.close_time, f"trade {t.ticket} close_time")
    if t.close_time < t.open_time:
        raise ValueError(f"trade {t.ticket}: close time {t.close_time} is before open time {t.open_time}")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Side):
        return value.value
    return value
