"""/daily, /weekly, /monthly (P/L per WIB period from the journal) and /export (trades as CSV).

`/daily` alone is today in detail; `/daily 7` is a table of the last seven WIB days (today first),
`/weekly 4` and `/monthly 3` the same per Monday-week and calendar month.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message

from handlers.common import (
    ArgError,
    AuditNote,
    clock_line,
    esc,
    join_sections,
    parse_count,
    plural,
    reply,
    section,
    short_time,
    signed,
    table,
    usd,
)
from handlers.paging import send_paged
from handlers.services import Services
from trading.timezones import to_wib, wib_date

PERIODS = {  # command -> (unit, default count, most, title)
    "daily": ("day", 7, 90, "DAILY"),
    "weekly": ("week", 4, 52, "WEEKLY"),
    "monthly": ("month", 3, 24, "MONTHLY"),
}


def period_name(start: Any, unit: str) -> str:
    if unit == "day":
        return start.strftime("%m-%d %a")
    if unit == "week":
        return "wk " + start.strftime("%m-%d")
    return start.strftime("%Y-%m")


def periods_text(rows: Sequence[Any], unit: str, title: str, now: Any) -> str:
    cells = [("", "trades", "win", "P/L")]
    cells += [
        (
            period_name(r.start, unit),
            str(r.trades),
            f"{r.wins / r.trades:.0%}" if r.trades else "—",
            signed(r.net) if r.trades else "—",
        )
        for r in rows
    ]
    trades = sum(r.trades for r in rows)
    wins = sum(r.wins for r in rows)
    net = sum(r.net for r in rows)
    cells.append(("total", str(trades), f"{wins / trades:.0%}" if trades else "—", signed(net)))
    return join_sections(
        f"📅 <b>{title}</b> · last {len(rows)} {unit}s (WIB)", table(cells, right=(1, 2, 3)), clock_line(now)
    )


def day_text(snap: Any, trades: Sequence[Any]) -> str:
    day = wib_date(snap.time)
    start = snap.risk.day_start_balance
    now_balance = snap.account.balance if snap.account else start
    change = (now_balance - start) / start if start else 0.0
    profit = sum(t.profit or 0.0 for t in trades)
    wins = sum((t.profit or 0.0) > 0 for t in trades)
    losses = sum((t.profit or 0.0) < 0 for t in trades)
    win_rate = f"{wins / len(trades):.0%}" if trades else "—"
    balance = section("Balance", [f"Start {usd(start)}", f"Now {usd(now_balance)} ({change:+.2%})"])
    result = section(
        "Stats",
        [
            f"Trades {len(trades):,} · Wins {wins:,} · Losses {losses:,}",
            f"Win rate {win_rate}",
            f"P/L <code>{signed(profit)}</code>",
        ],
    )
    listing = ""
    if trades:
        rows = [
            (
                f"#{t.ticket}",
                t.side.value,
                signed(t.profit or 0.0),
                (t.exit_reason or "—")[:14],
                short_time(t.close_time)[6:],
            )
            for t in trades
        ]
        listing = "<b>Trades</b>\n" + table(rows, right=(2,))
    return join_sections(
        f"📋 <b>DAILY</b> {day.isoformat()}", balance, result, listing, clock_line(snap.time)
    )


async def _period(
    message: Message,
    command: CommandObject,
    ctx: Services,
    audit: AuditNote,
    name: str,
    detail_when_empty: bool,
) -> None:
    unit, default, most, title = PERIODS[name]
    try:
        n = parse_count(
            command.args,
            default=None if detail_when_empty else default,
            low=1,
            high=most,
            what=f"The number of {unit}s",
        )
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(
            message, f"{esc(exc)}\nUsage: /{name} [n] — the last n {unit}s, today's first (1 to {most})"
        )
        return
    snap = ctx.engine.snapshot()
    assert ctx.queries is not None
    if n is None:  # /daily alone: today in detail
        trades = await ctx.queries.day_trades(wib_date(snap.time))
        audit.result = f"today: {len(trades)} trades"
        await send_paged(message, ctx, day_text(snap, trades), header_rows=0)
        return
    rows = await ctx.queries.periods(unit, n, wib_date(snap.time))
    audit.result = f"{n} {unit}s"
    await send_paged(message, ctx, periods_text(rows, unit, title, snap.time))


async def daily(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    await _period(message, command, ctx, audit, "daily", detail_when_empty=True)


async def weekly(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    await _period(message, command, ctx, audit, "weekly", detail_when_empty=False)


async def monthly(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    await _period(message, command, ctx, audit, "monthly", detail_when_empty=False)


def export_name(now: Any, days: int | None) -> str:
    """`trades_2026-12-02_081505_WIB.csv` (`_7d` for the last 7 days): the chat's clock, a new name per export."""
    stamp = to_wib(now).strftime("%Y-%m-%d_%H%M%S")
    return f"trades_{stamp}{f'_{days}d' if days else ''}_WIB.csv"


async def export(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    """/export [days]: the journal's trades as a CSV file (all trades, or those of the last N days)."""
    try:
        days = parse_count(command.args, default=None, low=1, high=3650, what="Days")
    except ArgError as exc:
        audit.result = f"usage: {exc}"
        await reply(message, f"{esc(exc)}\nUsage: /export [days] — no number: every trade")
        return
    now = ctx.engine.snapshot().time
    since = now - timedelta(days=days) if days else None
    text = await ctx.journal.export_trades_csv(since=since)
    rows = max(text.count("\n") - 1, 0)
    audit.result = f"{rows} trades"
    await message.answer_document(
        BufferedInputFile(text.encode("utf-8"), filename=export_name(now, days)),
        caption=plural(rows, "trade") + (f" from the last {plural(days, 'day')}" if days else ""),
    )


def make_router() -> Router:
    return Router(name="daily")
