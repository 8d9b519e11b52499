"""Read-only journal queries for the trader's reports: /profit, /stats, /performance, /trades,
/daily, /weekly, /monthly and /why.

The aggregates are small pure functions over closed `TradeRecord`s (a few thousand at most), so
the same figures come out whether the rows came from SQL or a test list. Days, weeks and months
are WIB calendar periods (the chat's clock); weeks start on Monday.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from bot.store.journal import Journal, wib_day_bounds
from bot.store.records import DecisionRecord, TradeRecord
from bot.store.schema import DecisionRow
from trading.sessions import session_at
from trading.timezones import WIB

PERIOD_UNITS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class TradeStats:
    trades: int
    wins: int
    losses: int
    net: float
    gross_win: float
    gross_loss: float  # positive
    best: TradeRecord | None
    worst: TradeRecord | None
    exit_reasons: tuple[tuple[str, int], ...]  # most common first
    avg_hold: timedelta

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None

    @property
    def profit_factor(self) -> float | None:
        """None when there is no losing trade (undefined, not infinite)."""
        return self.gross_win / self.gross_loss if self.gross_loss > 0 else None

    @property
    def expectancy(self) -> float | None:
        return self.net / self.trades if self.trades else None

    @property
    def avg_win(self) -> float | None:
        return self.gross_win / self.wins if self.wins else None

    @property
    def avg_loss(self) -> float | None:
        return -self.gross_loss / self.losses if self.losses else None


@dataclass(frozen=True, slots=True)
class GroupStats:
    name: str
    trades: int
    wins: int
    net: float

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0


@dataclass(frozen=True, slots=True)
class PeriodRow:
    start: date  # first WIB day of the period
    unit: str  # day | week | month
    trades: int
    wins: int
    net: float


@dataclass(frozen=True, slots=True)
class WhyReport:
    trade: TradeRecord | None
    decision: DecisionRecord | None


def _profit(t: TradeRecord) -> float:
    return t.profit or 0.0


def trade_stats(trades: Iterable[TradeRecord]) -> TradeStats:
    closed = [t for t in trades if not t.is_open]
    profits = [_profit(t) for t in closed]
    holds = [t.close_time - t.open_time for t in closed if t.close_time is not None]
    return TradeStats(
        trades=len(closed),
        wins=sum(p > 0 for p in profits),
        losses=sum(p < 0 for p in profits),
        net=sum(profits),
        gross_win=sum(p for p in profits if p > 0),
        gross_loss=-sum(p for p in profits if p < 0),
        best=max(closed, key=_profit, default=None),
        worst=min(closed, key=_profit, default=None),
        exit_reasons=tuple(Counter(t.exit_reason or "unknown" for t in closed).most_common()),
        avg_hold=sum(holds, timedelta()) / len(holds) if holds else timedelta(),
    )


def group_stats(trades: Iterable[TradeRecord], key: Any) -> list[GroupStats]:
    """Per-group figures, best net first; `key(trade) -> name`."""
    groups: dict[str, list[float]] = {}
    for t in trades:
        groups.setdefault(str(key(t)), []).append(_profit(t))
    out = [GroupStats(name, len(p), sum(x > 0 for x in p), sum(p)) for name, p in groups.items()]
    return sorted(out, key=lambda g: (-g.net, g.name))


_SETUP = re.compile(r"^(?P<head>\S+).*\+\s*(?:bullish|bearish)\s+(?P<kind>\S+)", re.IGNORECASE)


def setup_kind(reason: str) -> str:
    """`BOS up 3301.2 + bullish FVG 3298.10-3300.40` -> `BOS + FVG`; anything else -> its first words."""
    m = _SETUP.match(reason.strip())
    if m:
        return f"{m['head']} + {m['kind']}"
    return " ".join(reason.split()[:2]) or "unknown"


def period_start(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    raise ValueError(f"unit must be one of {PERIOD_UNITS}, got {unit!r}")


def previous_start(start: date, unit: str) -> date:
    if unit == "day":
        return start - timedelta(days=1)
    if unit == "week":
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def period_rows(trades: Iterable[TradeRecord], unit: str, n: int, today: date) -> list[PeriodRow]:
    """The last n periods up to the one holding `today` (newest first), empty periods included."""
    starts = [period_start(today, unit)]
    while len(starts) < n:
        starts.append(previous_start(starts[-1], unit))
    buckets: dict[date, list[float]] = {s: [] for s in starts}
    for t in trades:
        if t.close_time is None:
            continue
        start = period_start(t.close_time.astimezone(WIB).date(), unit)
        if start in buckets:
            buckets[start].append(_profit(t))
    return [PeriodRow(s, unit, len(p), sum(x > 0 for x in p), sum(p)) for s, p in buckets.items()]


class TradeQueries:
    """The read-only queries, over one open Journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def closed_since(self, since: datetime | None) -> list[TradeRecord]:
        """Closed trades (close time >= since), oldest first."""
        return list(reversed(await self.journal.closed_trades(since=since)))

    async def stats(self, since: datetime | None) -> TradeStats:
        return trade_stats(await self.closed_since(since))

    async def recent_closed(self, n: int) -> list[TradeRecord]:
        """The last n closed trades, newest first."""
        return await self.journal.closed_trades(limit=n)

    async def day_trades(self, day: date) -> list[TradeRecord]:
        """Trades closed in the WIB day, oldest first."""
        start, end = wib_day_bounds(day)
        return [t for t in await self.closed_since(start) if t.close_time is not None and t.close_time < end]

    async def periods(self, unit: str, n: int, today: date) -> list[PeriodRow]:
        starts = [period_start(today, unit)]
        while len(starts) < n:
            starts.append(previous_start(starts[-1], unit))
        since, _ = wib_day_bounds(starts[-1])
        return period_rows(await self.closed_since(since), unit, n, today)

    async def decisions_by_id(self, ids: Sequence[int]) -> dict[int, DecisionRecord]:
        if not ids:
            return {}
        from bot.store import convert

        async with self.journal._read() as s:
            rows = (await s.scalars(select(DecisionRow).where(DecisionRow.id.in_(list(ids))))).all()
            return {r.id: convert.decision(r) for r in rows}

    async def performance(self, since: datetime | None) -> dict[str, list[GroupStats]]:
        """Closed trades by setup (from the decision that opened them), WIB session at entry, and side."""
        trades = await self.closed_since(since)
        decisions = await self.decisions_by_id([t.decision_id for t in trades if t.decision_id is not None])

        def setup_of(t: TradeRecord) -> str:
            d = decisions.get(t.decision_id) if t.decision_id is not None else None
            if d is None:
                return "no decision"
            return setup_kind(d.setup or d.reason)

        def session_of(t: TradeRecord) -> str:
            d = decisions.get(t.decision_id) if t.decision_id is not None else None
            seen = d.features.get("session") if d is not None else None
            return str(seen) if seen else session_at(t.open_time).name  # older rows: from the entry time

        return {
            "setup": group_stats(trades, setup_of),
            "session": group_stats(trades, session_of),
            "side": group_stats(trades, lambda t: t.side.value),
        }

    async def why(self, ticket: int) -> WhyReport:
        trade = await self.journal.trade_by_ticket(ticket)
        decision = None
        if trade is not None and trade.decision_id is not None:
            decision = await self.journal.decision(trade.decision_id)
        return WhyReport(trade, decision)

    async def schema_revision(self) -> str:
        async with self.journal._read() as s:
            value = (await s.execute(text("select version_num from alembic_version"))).scalar()
        return str(value or "none")
