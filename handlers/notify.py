"""/notify: every message kind's switch; `/notify KIND on|silent|off` changes one (kept across restarts)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.common import AuditNote, esc, reply
from handlers.services import Services

USAGE = "Usage: /notify · /notify KIND on|silent|off (e.g. /notify market_update off)"


async def notify(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    control = ctx.extras.get("notify")
    if control is None:
        await reply(message, "Notifications are not running.")
        return
    args = (command.args or "").split()
    if not args:
        audit.result = "listed"
        await reply(message, "🔔 <b>NOTIFICATIONS</b> (on · silent · off)\n" + "\n".join(map(esc, control.lines()))
                    + f"\n\n{esc(USAGE)}")
        return
    if len(args) != 2:
        audit.result = "usage"
        await reply(message, esc(USAGE))
        return
    try:
        kind, value = await control.set(args[0], args[1])
    except ValueError as exc:
        audit.result = "refused"
        await reply(message, f"❌ {esc(exc)}")
        return
    audit.result = f"{kind}={value}"
    await reply(message, f"✅ {esc(kind)}: <b>{esc(value)}</b> (kept across restarts)")


def make_router() -> Router:
    return Router(name="notify")
