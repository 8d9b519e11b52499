"""/pause, /resume and /closeall (the last with a confirmation step)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.buttons import styled_button
from handlers.common import AuditNote, esc, reply, signed
from handlers.services import Services


class CloseAll(CallbackData, prefix="ca"):
    confirm: bool


async def pause(message: Message, ctx: Services, actor: str, audit: AuditNote) -> None:
    result = await ctx.engine.pause(by=actor)
    audit.result = result.message
    await reply(message, ("⏸ " if result.applied else "") + esc(result.message))


async def resume(message: Message, ctx: Services, actor: str, audit: AuditNote) -> None:
    result = await ctx.engine.resume(by=actor)
    audit.result = result.message
    if result.approval is not None:
        from handlers.approvals import send_approval  # the approval message with its buttons

        await send_approval(message, ctx, result.approval)
        return
    await reply(message, ("▶️ " if result.applied else "") + esc(result.message))


async def closeall(message: Message, ctx: Services, audit: AuditNote) -> None:
    positions = ctx.engine.snapshot().positions
    if not positions:
        audit.result = "nothing open"
        await reply(message, "📭 No open positions")
        return
    floating = sum(p.profit + p.swap for p in positions)
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[
        styled_button("Confirm close all", CloseAll(confirm=True).pack(), "danger"),
        InlineKeyboardButton(text="Cancel", callback_data=CloseAll(confirm=False).pack()),
    ]])
    audit.result = "asked"
    await reply(message, f"Close all <b>{len(positions)}</b> position(s), floating "
                         f"<code>{signed(floating)}</code>?", reply_markup=keyboard)


async def on_closeall(query: CallbackQuery, callback_data: CloseAll, ctx: Services, actor: str,
                      audit: AuditNote) -> None:
    if callback_data.confirm:
        closed = await ctx.engine.close_all(by=actor, reason=f"close all by {actor}")
        text = f"✅ Closed {closed} position(s)."
    else:
        text = "Close all cancelled."
    audit.result = text
    assert query.message is not None
    await query.bot.edit_message_text(text, chat_id=query.message.chat.id, message_id=query.message.message_id)
    await query.answer()


def make_router() -> Router:
    router = Router(name="control")
    router.callback_query.register(on_closeall, CloseAll.filter())
    return router
