"""/status: account, today's result, risk mode, session and regime, paused or not, uptime, loop timing."""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.types import Message

from handlers.clock import uptime as wall_uptime
from handlers.common import clock_line, duration, esc, join_sections, reply, section, signed, usd
from handlers.names import humanize, who
from handlers.services import Services
from trading.engine import EngineSnapshot
from trading.risk.modes import limit_use


def status_text(
    snap: EngineSnapshot, paused_by: str = "", started: datetime | None = None, reader: str | None = None
) -> str:
    acc, risk = snap.account, snap.risk
    head = f"🤖 <b>STATUS</b> {'⏸ paused' if snap.paused else '🟢 running'}"
    account = (
        [
            f"Balance <code>{usd(acc.balance)}</code>",
            f"Equity <code>{usd(acc.equity)}</code>",
            f"Floating <code>{signed(acc.floating_pl)}</code>",
        ]
        if acc
        else ["no account data yet"]
    )
    today = [
        f"P/L <code>{signed(risk.daily_realized)}</code>",
        f"Trades {risk.daily_trades:,} ({risk.daily_wins:,} won)",
        f"Open positions {len(snap.positions)}",
    ]
    use = limit_use(risk, snap.limits, acc.balance if acc else risk.day_start_balance)
    risk_items = [
        f"Mode <code>{snap.mode.mode}</code> ({esc(humanize(snap.mode.reason))})",
        f"Daily loss {usd(use.daily_loss)} / {usd(use.daily_limit)}",
        f"Total loss {usd(use.total_loss)} / {usd(use.total_limit)}",
        f"Streak {risk.consecutive_losses}L",
    ]
    a = snap.analysis
    market = [
        f"Session {esc(a.session.name)}" if a else "Session —",
        f"Regime {esc(a.regime.name)}" if a else "Regime unknown (no bar analysed yet)",
        *([f"Edge {esc(snap.strategy_edge)}"] if snap.strategy_edge else []),
    ]
    bot = [
        "Paused "
        + ((f"yes (by {esc(who(paused_by, reader))})" if paused_by else "yes") if snap.paused else "no"),
        f"Uptime {duration(wall_uptime(started) if started else snap.time - snap.started)}",  # wall time
    ]
    for phase, (p50, p99) in sorted(snap.timing.items()):
        bot.append(f"{esc(phase)} p50 {p50:.1f} ms · p99 {p99:.1f} ms")
    return join_sections(
        head,
        section("Account", account),
        section("Today", today),
        section("Risk", risk_items),
        section("Market", market),
        section("Bot", bot),
        clock_line(snap.time),
    )


def balance_text(snap: EngineSnapshot) -> str:
    acc = snap.account
    if acc is None:
        return join_sections("💳 <b>BALANCE</b>", "No account data yet.", clock_line(snap.time))
    level = f"{acc.equity / acc.margin:.0%}" if acc.margin > 0 else "— (no margin used)"
    items = [
        f"Balance <code>{usd(acc.balance)}</code>",
        f"Equity <code>{usd(acc.equity)}</code>",
        f"Floating <code>{signed(acc.floating_pl)}</code>",
        f"Margin <code>{usd(acc.margin)}</code>",
        f"Free margin <code>{usd(acc.free_margin)}</code>",
        f"Margin level <code>{level}</code>",
    ]
    about = [
        f"{esc(acc.currency)} · leverage 1:{acc.leverage}" + (f" · {esc(acc.server)}" if acc.server else ""),
        "Trading allowed" if acc.trade_allowed else "⛔ Trading not allowed by the broker",
    ]
    return join_sections(
        "💳 <b>BALANCE</b>", section("Account", items), section("Broker", about), clock_line(snap.time)
    )


async def balance(message: Message, ctx: Services) -> None:
    await reply(message, balance_text(ctx.engine.snapshot()))


async def status(message: Message, ctx: Services, actor: str) -> None:
    await reply(message, status_text(ctx.engine.snapshot(), ctx.engine.paused_by, ctx.started, actor))


def make_router() -> Router:
    return Router(name="status")
