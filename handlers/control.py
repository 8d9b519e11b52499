"""/pause, /resume and /closeall (the last with a confirmation step)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers import echo
from handlers.buttons import styled_button
from handlers.common import AuditNote, esc, plural, reply, signed, with_clock
from handlers.echo import notify_chat
from handlers.names import who
from handlers.services import Services
from trading.events import EventKind


class CloseAll(CallbackData, prefix="ca"):
    confirm: bool


PAUSED_TEXT = (
    "⏸ <b>Trading paused</b> by you: no new entries; open positions are still managed. /resume to continue."
)
RESUMED_TEXT = "▶️ <b>Trading resumed</b> by you: new entries are allowed again."


async def _switch(message: Message, ctx: Services, actor: str, kind: EventKind, change: Any) -> Any:
    """Run pause/resume; in the notification chat the reply stands in for the broadcast (one message)."""
    here = message.chat.id == notify_chat(ctx.notify)
    if here:
        echo.expect(kind.value, actor)
    result = await change(by=actor)
    if here and not result.applied:  # nothing changed, nothing published
        echo.withdraw(kind.value, actor)
    return result


async def pause(message: Message, ctx: Services, actor: str, audit: AuditNote) -> None:
    result = await _switch(message, ctx, actor, EventKind.PAUSED, ctx.engine.pause)
    audit.result = result.message
    if result.applied:
        text = PAUSED_TEXT
    else:
        text = (
            "Already paused"
            + (f" by {esc(who(ctx.engine.paused_by, actor))}" if ctx.engine.paused_by else "")
            + ". /resume to continue."
        )
    await reply(message, with_clock(text, ctx.engine.snapshot().time))


async def resume(message: Message, ctx: Services, actor: str, audit: AuditNote) -> None:
    result = await _switch(message, ctx, actor, EventKind.RESUMED, ctx.engine.resume)
    audit.result = result.message
    if result.approval is not None:
        from handlers.approvals import send_approval  # the approval message with its buttons

        await send_approval(message, ctx, result.approval)
        return
    text = RESUMED_TEXT if result.applied else esc(result.message.capitalize())
    await reply(message, with_clock(text, ctx.engine.snapshot().time))


async def closeall(message: Message, ctx: Services, audit: AuditNote) -> None:
    positions = ctx.engine.snapshot().positions
    if not positions:
        audit.result = "nothing open"
        await reply(message, "📭 No open positions")
        return
    floating = sum(p.profit + p.swap for p in positions)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                styled_button("Confirm close all", CloseAll(confirm=True).pack(), "danger"),
                InlineKeyboardButton(text="Cancel", callback_data=CloseAll(confirm=False).pack()),
            ]
        ]
    )
    audit.result = "asked"
    await reply(
        message,
        f"Close all <b>{plural(len(positions), 'position')}</b>, floating <code>{signed(floating)}</code>?",
        reply_markup=keyboard,
    )


async def on_closeall(
    query: CallbackQuery, callback_data: CloseAll, ctx: Services, bot: Bot, actor: str, audit: AuditNote
) -> None:
    if callback_data.confirm:
        closed = await ctx.engine.close_all(by=actor, reason="close all (asked in the chat)")
        text = f"✅ Closed {plural(closed, 'position')}."
    else:
        text = "Close all cancelled."
    audit.result = text
    assert query.message is not None
    text = with_clock(text, ctx.engine.snapshot().time)
    await bot.edit_message_text(
        text, chat_id=query.message.chat.id, message_id=query.message.message_id, parse_mode="HTML"
    )
    await query.answer()


def make_router() -> Router:
    router = Router(name="control")
    router.callback_query.register(on_closeall, CloseAll.filter())
    return router
