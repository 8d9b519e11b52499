"""/profit, /stats, /performance and /trades: closed trades from the journal (read-only queries).

Periods are WIB calendar days ending today: `/profit 7` is today and the six days before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.common import (
    ArgError,
    AuditNote,
    clock_line,
    duration,
    esc,
    join_sections,
    parse_count,
    pct,
    reply,
    section,
    short_time,
    signed,
    since_days,
    table,
    usd,
)
from handlers.paging import send_paged
from handlers.services import Services

MAX_DAYS = 3650
DEFAULT_TRADES, MAX_TRADES = 10, 50


def period_label(days: int | None) -> str:
    if days is None:
        return "all time"
    return "today" if days == 1 else f"last {days} days"


def trade_ref(t: Any) -> str:
    return f"#{t.ticket} {t.side.value} {signed(t.profit or 0.0)} ({short_time(t.close_time)})"


def profit_text(stats: Any, days: int | None, balance: float | None, floating: float, now: datetime) -> str:
    if stats.trades == 0:
        body = f"No closed trades {period_label(days)}."
        if floating:
            body += f"\nOpen P/L <code>{signed(floating)}</code>"
        return join_sections(f"💰 <b>PROFIT</b> · {period_label(days)}", body, clock_line(now))
    start = balance - stats.net if balance is not None else None
    growth = f" ({stats.net / start:+.2%})" if start else ""
    result = section(
        "Closed",
        [
            f"Net <code>{signed(stats.net)}</code>{growth}",
            f"Trades {stats.trades} · won {stats.wins} · lost {stats.losses} · win rate {pct(stats.win_rate)}",
            f"Profit factor {_pf(stats.profit_factor)} · expectancy <code>{signed(stats.expectancy)}</code>/trade",
        ],
    )
    now_items = [f"Open P/L <code>{signed(floating)}</code>"]
    if balance is not None:
        now_items.insert(0, f"Balance <code>{usd(balance)}</code>")
    extremes = section("Best / worst", [trade_ref(stats.best), trade_ref(stats.worst)])
    return join_sections(
        f"💰 <b>PROFIT</b> · {period_label(days)}",
        result,
        section("Now", now_items),
        extremes,
        clock_line(now),
    )


def _pf(pf: float | None) -> str:
    return "— (no losing trade)" if pf is None else f"<code>{pf:.2f}</code>"


def stats_text(stats: Any, days: int | None, now: datetime) -> str:
    head = f"📐 <b>STATS</b> · {period_label(days)}"
    if stats.trades == 0:
        return join_sections(head, f"No closed trades {period_label(days)}.", clock_line(now))
    figures = section(
        "Figures",
        [
            f"Profit factor {_pf(stats.profit_factor)}",
            f"Expectancy <code>{signed(stats.expectancy)}</code> per trade",
            f"Win rate {pct(stats.win_rate)} ({stats.wins}/{stats.trades})",
            f"Average win <code>{signed(stats.avg_win)}</code> · loss <code>{signed(stats.avg_loss)}</code>",
            f"Average hold {duration(stats.avg_hold)}",
            f"Net <code>{signed(stats.net)}</code>",
        ],
    )
    reasons = table(
        [(cell(name), str(n), f"{n / stats.trades:.0%}") for name, n in stats.exit_reasons], right=(1, 2)
    )
    extremes = section("Best / worst", [trade_ref(stats.best), trade_ref(stats.worst)])
    return join_sections(head, figures, "<b>Exit reasons</b>\n" + reasons, extremes, clock_line(now))


def cell(text: str) -> str:
    """A table cell, short enough for a phone (table() escapes it)."""
    return text[:18]


def group_table(groups: Sequence[Any]) -> str:
    rows = [("", "trades", "win", "P/L")]
    rows += [(cell(g.name), str(g.trades), f"{g.win_rate:.0%}", signed(g.net)) for g in groups]
    return table(rows, right=(1, 2, 3))


def performance_text(perf: Mapping[str, Sequence[Any]], days: int | None, now: datetime) -> str:
    head = f"🏁 <b>PERFORMANCE</b> · {period_label(days)}"
    if not any(perf.values()):
        return join_sections(head, f"No closed trades {period_label(days)}.", clock_line(now))
    parts = [f"<b>By {name}</b>\n{group_table(groups)}" for name, groups in perf.items()]
    return join_sections(head, *parts, clock_line(now))


def trades_text(trades: Sequence[Any], now: datetime) -> str:
    if not trades:
        return join_sections("📜 <b>TRADES</b>", "No closed trades yet.", clock_line(now))
    rows = [("#", "side", "lot", "P/L", "exit", "closed")]
    rows += [
        (
            str(t.ticket),
            t.side.value,
            f"{t.volume:g}",
            signed(t.profit or 0.0),
            cell(t.exit_reason or "—"),
            short_time(t.close_time),
        )
        for t in trades
    ]
    total = sum(t.profit or 0.0 for t in trades)
    return join_sections(
        f"📜 <b>TRADES</b> · last {len(trades)}",
        table(rows, right=(2, 3)),
        f"Sum <code>{signed(total)}</code>",
        clock_line(now),
    )


async def _days(
    message: Message, command: CommandObject, audit: AuditNote, usage: str
) -> tuple[bool, int | None]:
    try:
        return True, parse_count(command.args, default=None, low=1, high=MAX_DAYS, what="Days")
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(message, f"{esc(exc)}\n{usage}")
        return False, None


async def profit(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    ok, days = await _days(
        message, command, audit, "Usage: /profit [days] — e.g. /profit 7; no number: all time"
    )
    if not ok:
        return
    snap = ctx.engine.snapshot()
    assert ctx.queries is not None
    stats = await ctx.queries.stats(since_days(snap.time, days))
    floating = sum(p.profit + p.swap for p in snap.positions)
    audit.result = f"{stats.trades} trades"
    await reply(
        message, profit_text(stats, days, snap.account.balance if snap.account else None, floating, snap.time)
    )


async def stats(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    ok, days = await _days(
        message, command, audit, "Usage: /stats [days] — e.g. /stats 30; no number: all time"
    )
    if not ok:
        return
    snap = ctx.engine.snapshot()
    assert ctx.queries is not None
    figures = await ctx.queries.stats(since_days(snap.time, days))
    audit.result = f"{figures.trades} trades"
    await reply(message, stats_text(figures, days, snap.time))


async def performance(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    ok, days = await _days(
        message, command, audit, "Usage: /performance [days] — e.g. /performance 30; no number: all time"
    )
    if not ok:
        return
    snap = ctx.engine.snapshot()
    assert ctx.queries is not None
    perf = await ctx.queries.performance(since_days(snap.time, days))
    await send_paged(message, ctx, performance_text(perf, days, snap.time))


async def trades(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    try:
        n = parse_count(
            command.args, default=DEFAULT_TRADES, low=1, high=MAX_TRADES, what="The number of trades"
        )
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(
            message, f"{esc(exc)}\nUsage: /trades [n] — the last n closed trades, default {DEFAULT_TRADES}"
        )
        return
    assert ctx.queries is not None and n is not None
    rows = await ctx.queries.recent_closed(n)
    audit.result = f"{len(rows)} trades"
    await send_paged(message, ctx, trades_text(rows, ctx.engine.snapshot().time))


def make_router() -> Router:
    return Router(name="performance")
