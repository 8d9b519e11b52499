"""The Telegram controller: the command table, the dispatcher, and polling start/stop.

`COMMANDS` is the one table of commands: /help prints it, `set_my_commands` registers it as
Telegram's menu, and `build_dispatcher` registers each handler from it, so the three cannot drift.
One outer middleware (bot.auth.AccessMiddleware) guards and audits messages and button presses;
one error handler logs and answers a short apology, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import BotCommand, ErrorEvent

from bot.auth import AccessMiddleware
from bot.context import BotContext
from handlers import (
    approvals,
    backtest,
    charts,
    control,
    daily,
    filters,
    market,
    model,
    notify,
    paging,
    performance,
    positions,
    risk,
    shadow,
    start,
    status,
    system,
    why,
)
from handlers.approvals import ApprovalAnnouncer

log = logging.getLogger(__name__)

APOLOGY = "Something went wrong; it is logged."


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    description: str  # one line, shown by /help and in Telegram's menu
    handler: Callable[..., Awaitable[Any]]
    args: str = ""  # argument hint for /help
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("start", "Greeting, the command list and the quick keyboard", start.start),
    CommandSpec("help", "Every command with what it does", start.help_, aliases=("h",)),
    CommandSpec("status", "Account, today's P/L, risk mode, session, uptime", status.status, aliases=("s",)),
    CommandSpec(
        "balance", "Balance, equity, margin, free margin, margin level", status.balance, aliases=("b",)
    ),
    CommandSpec(
        "positions", "Open positions, with a close button each", positions.positions, aliases=("pos", "p")
    ),
    CommandSpec("close", "Close one position (asks first)", positions.close, args="TICKET"),
    CommandSpec("closeall", "Close every open position (asks first)", control.closeall),
    CommandSpec("pause", "Stop new entries (open positions stay managed)", control.pause),
    CommandSpec("resume", "Allow new entries again", control.resume),
    CommandSpec(
        "risk",
        "Risk mode and limits; change them",
        risk.risk,
        args="[mode|percent|daily|total|maxpos|reset X]",
    ),
    CommandSpec("market", "Price, spread, regime, SMC setup, ML signal", market.market, aliases=("m",)),
    CommandSpec("filters", "Every entry gate of the last decision", filters.filters, aliases=("f",)),
    CommandSpec("why", "Why a trade was taken: gates, setup, regime, ML, features", why.why, args="TICKET"),
    CommandSpec("profit", "Net P/L, win rate, PF, best and worst trade", performance.profit, args="[days]"),
    CommandSpec(
        "stats", "PF, expectancy, win rate, average win/loss, exit reasons", performance.stats, args="[days]"
    ),
    CommandSpec(
        "performance",
        "Results by setup, session and side",
        performance.performance,
        args="[days]",
        aliases=("perf",),
    ),
    CommandSpec("trades", "The last closed trades", performance.trades, args="[n]", aliases=("t",)),
    CommandSpec("daily", "Today in detail, or P/L per day", daily.daily, args="[days]", aliases=("d",)),
    CommandSpec(
        "weekly", "P/L per week (Monday to Sunday, WIB)", daily.weekly, args="[weeks]", aliases=("w",)
    ),
    CommandSpec("monthly", "P/L per calendar month", daily.monthly, args="[months]"),
    CommandSpec("export", "Trades as a CSV file", daily.export, args="[days]"),
    CommandSpec("chart", "Candlestick chart with SMC overlays", charts.chart, args="[bars 20-300]"),
    CommandSpec("equity", "Equity curve with drawdown", charts.equity),
    CommandSpec(
        "shadow",
        "Challengers on paper beside live: figures, chart; add or drop one",
        shadow.shadow,
        args="[add vNNN | add params NAME | drop N]",
    ),
    CommandSpec(
        "backtest",
        "Replay the strategy over recent bars (runs aside); beside challengers too",
        backtest.backtest,
        args="[days] [challenger vNNN | challenger params NAME]",
    ),
    CommandSpec("model", "Active model version and its metrics", model.model),
    CommandSpec("retrain", "Retrain the models now", model.retrain),
    CommandSpec("health", "Is everything working: broker, bars, loop, journal", system.health),
    CommandSpec("logs", "The last log lines", system.logs, args="[n] [warn|error]"),
    CommandSpec("version", "Bot, model and library versions", system.version),
    CommandSpec(
        "notify", "Switch each message kind on, silent or off", notify.notify, args="[KIND on|silent|off]"
    ),
)
ROUTER_MODULES = (
    start,
    status,
    positions,
    control,
    risk,
    market,
    filters,
    why,
    performance,
    daily,
    charts,
    backtest,
    model,
    system,
    notify,
    approvals,
    paging,
    shadow,
)


def bot_commands(commands: tuple[CommandSpec, ...] = COMMANDS) -> list[BotCommand]:
    return [BotCommand(command=c.name, description=c.description[:256]) for c in commands]


def build_dispatcher(
    ctx: BotContext, *, allowed_users: list[int] | None = None, refusal_interval: float = 600.0
) -> Dispatcher:
    """`allowed_users` replaces the settings' TELEGRAM_ALLOWED_USERS (the console's one user)."""
    dp = Dispatcher()
    dp["ctx"] = ctx
    dp["commands"] = COMMANDS
    users = ctx.settings.telegram_allowed_users if allowed_users is None else allowed_users
    access = AccessMiddleware(ctx.journal, users, refusal_interval=refusal_interval)
    dp["access"] = access
    dp.message.outer_middleware(access)
    dp.callback_query.outer_middleware(access)
    routers: dict[str, Router] = {m.__name__: m.make_router() for m in ROUTER_MODULES}
    for spec in COMMANDS:
        routers[spec.handler.__module__].message.register(spec.handler, Command(spec.name, *spec.aliases))
    fallback = Router(name="fallback")  # included last: only what no command matched
    fallback.message.register(start.unknown_command, F.text.startswith("/"))
    fallback.message.register(start.plain_text, F.text)
    dp.include_routers(*routers.values(), fallback)
    dp.errors.register(on_error)
    return dp


async def on_error(event: ErrorEvent) -> bool:
    log.error("handler failed on update %s", event.update.update_id, exc_info=event.exception)
    update = event.update
    with contextlib.suppress(Exception):
        if update.callback_query is not None:
            await update.callback_query.answer(APOLOGY)
        elif update.message is not None:
            await update.message.answer(APOLOGY)
    return True


def make_bot(token: str, api_url: str | None = None) -> Bot:
    """A Bot; with `api_url` (a local Bot API server or the test fake) its session points there."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else AiohttpSession()
    return Bot(token, session=session)


@dataclass(slots=True)
class Polling:
    """A running controller: the dispatcher's polling task and the approval announcer."""

    dp: Dispatcher
    bot: Bot
    task: asyncio.Task[None]
    announcer: ApprovalAnnouncer

    async def stop(self, timeout: float = 10.0) -> None:
        await self.announcer.stop()
        with contextlib.suppress(RuntimeError):  # polling already stopped
            await self.dp.stop_polling()
        try:
            await asyncio.wait_for(self.task, timeout)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        access = self.dp.get("access")
        if access is not None:
            await access.drain(timeout)  # let updates in progress finish their reply and audit


async def _retry_card(send: Callable[[], Awaitable[Any]], what: str, wanted: Callable[[], bool]) -> Any:
    """An approval card is retried through an outage while its request is pending (bot.retry.keep_trying)."""
    from bot.retry import keep_trying

    return await keep_trying(send, what=what, wanted=wanted)


async def start_polling(
    ctx: BotContext, bot: Bot, *, dp: Dispatcher | None = None, polling_timeout: int = 10
) -> Polling:
    """Register the command menu, start the announcer and long polling in background tasks."""
    dp = dp or build_dispatcher(ctx)
    try:
        await bot.set_my_commands(bot_commands())
    except TelegramAPIError as exc:  # the menu is a convenience; polling still works without it
        log.warning("set_my_commands failed: %s", exc)
    announcer = ApprovalAnnouncer(ctx, bot, ctx.settings.notify_chat_id, retry=_retry_card)
    announcer.start()
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, polling_timeout=polling_timeout, close_bot_session=False),
        name="telegram-polling",
    )
    return Polling(dp, bot, task, announcer)


async def stop_polling(polling: Polling) -> None:
    await polling.stop()
