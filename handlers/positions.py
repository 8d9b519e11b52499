"""/positions: each open position with P/L, SL/TP and age, and a "Close #ticket" button.

A close goes through a confirmation step: the button asks, "Confirm close" closes, "Cancel" drops it.
The callback data carries the ticket only; the position is read again when the user confirms.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.buttons import styled_button
from handlers.common import AuditNote, clock_line, duration, esc, price, reply, signed, with_clock
from handlers.services import Services
from trading.domain import Position


class PositionAction(CallbackData, prefix="pos"):
    action: str  # "ask" | "yes" | "no"
    ticket: int


def position_line(p: Position, now: datetime) -> str:
    pl = p.profit + p.swap
    sl, tp = price(p.sl), price(p.tp)
    return (
        f"<b>#{p.ticket}</b> {p.side} {p.volume:g} @ <code>{price(p.open_price)}</code>"
        f" → <code>{price(p.current_price)}</code>\n"
        f"   P/L <code>{signed(pl)}</code> · SL {sl} · TP {tp} · age {duration(now - p.open_time)}"
    )


def positions_view(positions: tuple[Position, ...], now: datetime) -> tuple[str, InlineKeyboardMarkup | None]:
    if not positions:
        return f"📭 No open positions\n\n{clock_line(now)}", None
    total = sum(p.profit + p.swap for p in positions)
    lines = [f"📈 <b>POSITIONS</b> ({len(positions)})", ""]
    lines += [position_line(p, now) for p in positions]
    lines += ["", f"Total P/L <code>{signed(total)}</code>", "", clock_line(now)]
    buttons = [
        [
            InlineKeyboardButton(
                text=f"Close #{p.ticket}", callback_data=PositionAction(action="ask", ticket=p.ticket).pack()
            )
        ]
        for p in positions
    ]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons)


def confirm_keyboard(ticket: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                styled_button("Confirm close", PositionAction(action="yes", ticket=ticket).pack(), "danger"),
                InlineKeyboardButton(
                    text="Cancel", callback_data=PositionAction(action="no", ticket=ticket).pack()
                ),
            ]
        ]
    )


async def positions(message: Message, ctx: Services) -> None:
    snap = ctx.engine.snapshot()
    text, markup = positions_view(snap.positions, snap.time)
    await reply(message, text, reply_markup=markup)


def close_question(p: Position) -> str:
    return (
        f"Close <b>#{p.ticket}</b> {p.side} {p.volume:g} @ {price(p.open_price)}, "
        f"P/L now <code>{signed(p.profit + p.swap)}</code>?"
    )


async def close(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    """/close TICKET: the same confirmation the position's button asks."""
    open_now = ctx.engine.snapshot().positions
    listing = ", ".join(f"#{p.ticket}" for p in open_now) or "none"
    word = (command.args or "").strip().lstrip("#")
    if not word.isdigit():
        audit.result = "usage"
        await reply(
            message,
            f"Usage: /close TICKET — e.g. /close {open_now[0].ticket if open_now else 123456}\n"
            f"Open now: {listing}",
        )
        return
    ticket = int(word)
    pos = next((p for p in open_now if p.ticket == ticket), None)
    if pos is None:
        audit.result = "not open"
        await reply(message, f"#{ticket} is not open. Open now: {esc(listing)}")
        return
    audit.result = "asked"
    await reply(message, close_question(pos), reply_markup=confirm_keyboard(ticket))


async def on_position_button(
    query: CallbackQuery,
    callback_data: PositionAction,
    ctx: Services,
    bot: Bot,
    actor: str,
    audit: AuditNote,
) -> None:
    ticket = callback_data.ticket
    pos = ctx.engine.positions.get(ticket)
    if callback_data.action == "no":
        audit.result = "cancelled"
        if query.message is not None:
            await bot.edit_message_text(
                f"Close of #{ticket} cancelled: it stays open.",
                chat_id=query.message.chat.id,
                message_id=query.message.message_id,
            )
        await query.answer()
        return
    if pos is None:
        audit.result = "no such position"
        await query.answer(f"#{ticket} is no longer open", show_alert=True)
        return
    if callback_data.action == "ask":
        audit.result = "asked"
        text = close_question(pos)
        if query.message is not None:
            await bot.send_message(
                query.message.chat.id, text, parse_mode="HTML", reply_markup=confirm_keyboard(ticket)
            )
        await query.answer()
        return
    trade = await ctx.engine.close(ticket, by=actor)
    if trade is None:
        audit.result = "close failed"
        text = f"❌ Could not close #{ticket}; see the log."
    else:
        audit.result = f"closed {trade.profit:+.2f}"
        text = f"✅ Closed <b>#{ticket}</b> at {price(trade.close_price)}, P/L <code>{signed(trade.profit)}</code>"
    if query.message is not None:
        await bot.edit_message_text(
            with_clock(text, ctx.engine.snapshot().time),
            chat_id=query.message.chat.id,
            message_id=query.message.message_id,
            parse_mode="HTML",
        )
    await query.answer()  # the edited message is the answer; a toast ("Done") would say it twice


def make_router() -> Router:
    router = Router(name="positions")
    router.callback_query.register(
        on_position_button, PositionAction.filter(F.action.in_({"ask", "yes", "no"}))
    )
    return router
