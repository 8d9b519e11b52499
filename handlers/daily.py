"""/daily: today's (WIB) closed trades and P/L from the journal, with the day's start balance."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from handlers.common import clock_line, join_sections, money, reply, section, signed
from handlers.services import Services
from trading.timezones import wib_date


async def daily(message: Message, ctx: Services) -> None:
    snap = ctx.engine.snapshot()
    day = wib_date(snap.time)
    stats = await ctx.journal.stats_for_day(day)
    start = snap.risk.day_start_balance
    now_balance = snap.account.balance if snap.account else start
    change = (now_balance - start) / start if start else 0.0
    win_rate = f"{stats.wins / stats.trades:.0%}" if stats.trades else "—"
    balance = section("Balance", [f"Start {money(start)}", f"Now {money(now_balance)} ({change:+.2%})"])
    result = section("Stats", [
        f"Trades {stats.trades} · Wins {stats.wins} · Losses {stats.losses}",
        f"Win rate {win_rate}",
        f"P/L <code>{signed(stats.profit)}</code>",
    ])
    await reply(message, join_sections(f"📋 <b>DAILY</b> {day.isoformat()}", balance, result,
                                       clock_line(snap.time)))


def make_router() -> Router:
    return Router(name="daily")


async def export(message: Message, ctx: Services) -> None:
    """/export [days]: the journal's trades as a CSV file (all trades, or those of the last N days)."""
    from datetime import timedelta

    from aiogram.types import BufferedInputFile

    from handlers.common import esc

    args = (message.text or "").split()[1:]
    if len(args) > 1 or (args and not (args[0].isdigit() and 1 <= int(args[0]) <= 3650)):
        await reply(message, f"Usage: /export [days 1-3650] (got {esc(' '.join(args))})")
        return
    since = ctx.engine.snapshot().time - timedelta(days=int(args[0])) if args else None
    text = await ctx.journal.export_trades_csv(since=since)
    rows = max(text.count("\n") - 1, 0)
    name = f"trades_{wib_date(ctx.engine.snapshot().time).isoformat()}.csv"
    await message.answer_document(BufferedInputFile(text.encode("utf-8"), filename=name),
                                  caption=f"{rows} trade(s)" + (f" from the last {args[0]} day(s)" if args else ""))
