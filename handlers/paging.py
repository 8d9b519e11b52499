"""Long replies as pages turned with buttons (◀ 2/5 ▶) under one message, edited in place.

A reply taller than a phone screen (PAGE_UNITS lines, a long line counting as the lines it wraps
to, or PAGE_CHARS characters) is cut into pages at line ends. <pre> tables are cut between rows; the
first `header_rows` rows of a table (its column names) and the line naming it are repeated on every
page it continues on, and so are the reply's title (what comes before the first table) and its
closing lines (the sum, the clock line). The pages are kept in memory with the message (the newest
KEEP_LISTS lists), so a press re-reads nothing and the figures never shift under the reader; the
button carries only the page (typed `PageTurn` callback data). A press on a list no longer kept
(after a restart) says so and takes the buttons away. Presses pass the access middleware and the
audit like any button: a stranger's press changes nothing.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.common import AuditNote, reply
from handlers.memory import PagedList
from handlers.services import Services

PAGE_UNITS = 24  # screen lines on a phone
LINE_WIDTH = 52  # characters a phone shows on one line of a table (a table row of /trades fits)
PAGE_CHARS = 3000  # well under Telegram's 4,096
KEEP_LISTS = 50
GONE = "This list is no longer kept: send the command again."
PRE, END_PRE = "<pre>", "</pre>"


class PageTurn(CallbackData, prefix="pg"):
    page: int  # 0-based page to show


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    table: int = -1  # -1: outside any table; else which <pre> block
    header: bool = False  # one of the table's column-name rows


def units(line: str) -> int:
    """Screen lines a line takes on a phone (an empty one still takes one)."""
    return max(1, math.ceil(len(line) / LINE_WIDTH))


def _lines(text: str, header_rows: int) -> list[_Line]:
    """The reply's lines, the rows of <pre> blocks marked with their table (the tags taken off the rows)."""
    out: list[_Line] = []
    table, row, inside = -1, 0, False
    for raw in text.split("\n"):
        rest = raw
        while True:
            if not inside:
                at = rest.find(PRE)
                if at < 0:
                    out.append(_Line(rest))
                    break
                if rest[:at].strip():
                    out.append(_Line(rest[:at]))
                rest, inside, table, row = rest[at + len(PRE) :], True, table + 1, 0
                if not rest:
                    break
            end = rest.find(END_PRE)
            out.append(_Line(rest if end < 0 else rest[:end], table, row < header_rows))
            row += 1
            if end < 0:
                break
            rest, inside = rest[end + len(END_PRE) :], False
            if not rest.strip():
                break
    return out


def _render(lines: list[_Line]) -> str:
    """Lines back to HTML: consecutive rows of one table inside one <pre> block."""
    parts: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].table < 0:
            parts.append(lines[i].text)
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].table == lines[i].table:
            j += 1
        parts.append(PRE + "\n".join(x.text for x in lines[i:j]) + END_PRE)
        i = j
    return "\n".join(parts)


def _trim(lines: list[_Line]) -> list[_Line]:
    start, end = 0, len(lines)
    while start < end and lines[start].table < 0 and not lines[start].text.strip():
        start += 1
    while end > start and lines[end - 1].table < 0 and not lines[end - 1].text.strip():
        end -= 1
    return lines[start:end]


def paginate(
    text: str, *, header_rows: int = 1, max_units: int = PAGE_UNITS, max_chars: int = PAGE_CHARS
) -> list[str]:
    """The pages of a reply: [text] when it fits one page; else each page holds the title, a slice of
    the body (a table carried over keeps its caption and column names) and the closing lines."""
    lines = _lines(text, header_rows)
    rows = [i for i, x in enumerate(lines) if x.table >= 0]
    if not rows or (sum(units(x.text) for x in lines) <= max_units and len(text) <= max_chars):
        return [text]
    start = rows[0]
    while start > 0 and lines[start - 1].table < 0 and lines[start - 1].text.strip():
        start -= 1  # the lines right above the first table name it: they belong to it, not to every page
    head, body, foot = _trim(lines[:start]), lines[start : rows[-1] + 1], _trim(lines[rows[-1] + 1 :])
    continued: dict[int, list[_Line]] = {}  # table -> its caption (inside the body) and column names
    caption: _Line | None = None
    for x in body:
        if x.table < 0:
            caption = x if x.text.strip() else caption
        elif x.table not in continued:
            continued[x.table] = [caption] if caption is not None else []
            caption = None
        if x.header:
            continued[x.table].append(x)
    fixed = sum(units(x.text) for x in head + foot) + 2
    budget_units = max(max_units - fixed, 6)
    budget_chars = max(max_chars - sum(len(x.text) + 1 for x in head + foot), 600)

    pages: list[list[_Line]] = []
    page: list[_Line] = []

    def full(lines_: list[_Line]) -> bool:
        return (
            sum(units(y.text) for y in lines_) > budget_units
            or sum(len(y.text) + 1 for y in lines_) > budget_chars
        )

    for x in body:
        if page and full([*page, x]):
            carry: list[_Line] = []  # a caption or column names with no row under them yet move on
            while page and (page[-1].table < 0 or page[-1].header):
                carry.insert(0, page.pop())
            if page:
                pages.append(page)
                page = list(continued[x.table]) if x.table >= 0 and not x.header and not carry else []
            page += carry
        page.append(x)
    pages.append(page)
    gap = [_Line("")]
    return [_render(_trim(head + gap + _trim(p) + gap + foot)) for p in pages]


def keyboard(page: int, count: int) -> InlineKeyboardMarkup:
    """◀ n/N ▶; the arrows wrap around, the middle button only says where you are."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="◀", callback_data=PageTurn(page=(page - 1) % count).pack()),
                InlineKeyboardButton(text=f"{page + 1}/{count}", callback_data=PageTurn(page=page).pack()),
                InlineKeyboardButton(text="▶", callback_data=PageTurn(page=(page + 1) % count).pack()),
            ]
        ]
    )


async def send_paged(
    message: Message, ctx: Services, text: str, *, header_rows: int = 1, last_first: bool = False
) -> Message:
    """Answer with `text`, paged with buttons when it is longer than a page (`last_first`: open on the
    last page, for a log whose newest lines are at the end)."""
    pages = paginate(text, header_rows=header_rows)
    if len(pages) == 1:
        return await reply(message, text)
    shown = len(pages) - 1 if last_first else 0
    sent = await message.answer(pages[shown], parse_mode="HTML", reply_markup=keyboard(shown, len(pages)))
    ctx.paged_lists.add((sent.chat.id, sent.message_id), PagedList(pages, shown), keep=KEEP_LISTS)
    return sent


async def on_page(
    query: CallbackQuery, callback_data: PageTurn, ctx: Services, bot: Bot, audit: AuditNote
) -> None:
    assert query.message is not None  # the access middleware answers presses on inaccessible messages
    chat_id, message_id = query.message.chat.id, query.message.message_id
    listed = ctx.paged_lists.get((chat_id, message_id))
    if listed is None:
        audit.result = "list no longer kept"
        with contextlib.suppress(TelegramAPIError):  # already without buttons
            await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
        await query.answer(GONE, show_alert=True)
        return
    count = len(listed.pages)
    page = callback_data.page
    if not 0 <= page < count:
        audit.result = f"no page {page + 1} of {count}"
        await query.answer(f"There are {count} pages.")
        return
    if page == listed.shown:
        audit.result = f"page {page + 1}/{count} (already shown)"
        await query.answer(f"Page {page + 1} of {count}")
        return
    try:
        await bot.edit_message_text(
            listed.pages[page],
            chat_id=chat_id,
            message_id=message_id,
            parse_mode="HTML",
            reply_markup=keyboard(page, count),
        )
    except TelegramAPIError as exc:
        audit.result = f"page {page + 1}/{count} not shown: {exc}"
        await query.answer("Telegram refused the page; try again.")
        return
    listed.shown = page
    ctx.paged_lists.touch((chat_id, message_id))
    audit.result = f"page {page + 1}/{count}"
    await query.answer()


def make_router() -> Router:
    router = Router(name="paging")
    router.callback_query.register(on_page, PageTurn.filter())
    return router
