"""The chat side of a running bot: Telegram long polling (or, without TELEGRAM_TOKEN, the console)
and the notifier that writes to that chat, started after the engine and stopped before it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import polling_log
from bot.budget import ChatBudget
from bot.catchup import state_line
from bot.notifier import NOTIFY_STATE_KEY, Notifier, NotifyControl
from bot.store.outbox import OutboxStore
from bot.transport import ConsoleTransport, TelegramTransport, Transport
from trading.timezones import utc_now

if TYPE_CHECKING:
    from bot.console import ConsoleController
    from bot.context import BotContext
    from bot.telegram import Polling
    from trading.events import EventBus

CONSOLE_USER = 1000


@dataclass(slots=True)
class Controller:
    transport: Transport
    notifier: Notifier
    polling: Polling | None  # Telegram
    console: ConsoleController | None  # no TELEGRAM_TOKEN: commands typed at the terminal
    note: str = ""  # for the start-up message ("" on Telegram)

    async def stop(self) -> None:
        """Send what is queued (10 s at most; must-deliver messages stay in the outbox), then stop."""
        await self.notifier.stop(timeout=10)
        if self.polling is not None:
            await self.polling.stop()
            await self.polling.bot.session.close()
        if self.console is not None:
            await self.console.stop()


async def start_controller(
    ctx: BotContext, bus: EventBus, *, console_input: bool, on_interrupt: Callable[[], None]
) -> Controller:
    """Telegram when a token is set, else the console (reading stdin when `console_input`); then the
    notifier, with the switches /notify kept and what the last run could not deliver first in line."""
    from bot.telegram import build_dispatcher, make_bot, start_polling

    s = ctx.settings
    quiet_polling: polling_log.PollingOutageFilter | None = None
    polling: Polling | None = None
    console: ConsoleController | None = None
    transport: Transport
    if s.telegram_token is not None:
        quiet_polling = polling_log.install()  # one line per polling outage, not one per try
        bot = make_bot(s.telegram_token.get_secret_value(), s.telegram_api_url)
        polling = await start_polling(ctx, bot)
        transport = TelegramTransport(bot)
        chat = s.notify_chat_id
        note = ""
    else:
        from bot.console import ConsoleController

        console_transport = ConsoleTransport(photo_dir=s.database_path.parent / "photos", clock=utc_now)
        transport, chat = console_transport, CONSOLE_USER
        dp = build_dispatcher(ctx, allowed_users=[CONSOLE_USER])
        console = ConsoleController(dp, console_transport, CONSOLE_USER, on_interrupt=on_interrupt)
        if console_input:
            console.start()
        note = (
            "no TELEGRAM_TOKEN: console mode (type /help; photos are saved under "
            f"{s.database_path.parent / 'photos'}, /export files under "
            f"{s.database_path.parent / 'exports'})"
        )
    budget = ChatBudget(per_minute=s.notify_per_minute, report_gap=s.notify_report_gap_minutes * 60)
    notifier = Notifier(
        transport,
        chat or CONSOLE_USER,
        quiet_kinds=s.quiet_notifications,
        muted_kinds=s.muted_notifications,
        budget=budget,
        outbox=OutboxStore(ctx.journal),
        state_line=lambda: state_line(ctx.engine.snapshot()),
    )
    notifier.load_switches((await ctx.journal.load_state()).get(NOTIFY_STATE_KEY) or {})  # /notify's
    ctx.notify = NotifyControl(notifier, ctx.journal.save_state)
    await notifier.restore()  # what the last run could not deliver goes first
    if quiet_polling is not None:  # polling got through again: the outbox retries at once
        quiet_polling.on_recovery = notifier.courier.nudge
    notifier.attach(bus)
    return Controller(transport, notifier, polling, console, note)
