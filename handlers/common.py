"""Small helpers every handler uses: HTML escaping, money and time formats, splitting long replies.

Replies are HTML (`parse_mode="HTML"`); anything that came from a user or the outside world goes
through `esc`. Telegram refuses texts over 4096 characters, so `reply` splits on line boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardMarkup, Message, ReplyKeyboardMarkup

from handlers.fmt import (  # noqa: F401  (the one kit, re-exported for the handlers)
    DASH,
    clip,
    clock_line,
    code,
    count,
    esc,
    join_sections,
    lot,
    pct,
    plural,
    price,
    section,
    signed,
    usd,
    with_clock,
)
from trading.timezones import WIB, to_wib, wib_date

MAX_MESSAGE = 4096
SPLIT_AT = 4000  # leaves room for entities Telegram counts differently


@dataclass(slots=True)
class AuditNote:
    """Handed to every handler by the access middleware; a handler may set `result` for the audit log."""

    result: str = "ok"


def short_time(t: datetime | None) -> str:
    """`12-02 08:15` in WIB, the chat's clock."""
    return to_wib(t).strftime("%m-%d %H:%M") if t is not None else "—"


class ArgError(ValueError):
    """A malformed command argument; the message is for the user."""


def parse_count(args: str | None, *, default: int | None, low: int, high: int, what: str) -> int | None:
    """One optional whole number in low..high; ArgError in a trader's words otherwise."""
    words = (args or "").split()
    if not words:
        return default
    if len(words) > 1 or not words[0].lstrip("+").isdigit():
        raise ArgError(f"{what} must be one whole number from {low} to {high} (got {' '.join(words)!r})")
    n = int(words[0])
    if not low <= n <= high:
        raise ArgError(f"{what} must be from {low} to {high} (got {n})")
    return n


def wib_day_start(day: date) -> datetime:
    """The UTC-aware instant a WIB calendar day starts."""
    return datetime.combine(day, time(), WIB)


def since_days(now: datetime, days: int | None) -> datetime | None:
    """The start of the WIB day `days - 1` days before today (days=1: today); None: all history."""
    return wib_day_start(wib_date(now) - timedelta(days=days - 1)) if days else None


def table(rows: Sequence[tuple[str, ...]], right: tuple[int, ...] = ()) -> str:
    """A monospace table (<pre>) for a phone: columns padded to their widest cell, `right` columns right-aligned."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        " ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    return "<pre>" + esc("\n".join(lines)) + "</pre>"


def duration(delta: timedelta) -> str:
    """`3d 4h`, `2h 05m`, `7m`, `42s`."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def split_text(text: str, limit: int = SPLIT_AT) -> list[str]:
    """Pieces under `limit` characters, cut at line ends (a single over-long line is cut hard)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current or not pieces:
        pieces.append(current)
    return [p for p in pieces if p.strip()] or [text[:limit] or "(empty)"]


async def reply(
    message: Message,
    text: str,
    reply_markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None,
    **kwargs: object,
) -> Message:
    """Answer in HTML, split under the size limit; the keyboard (if any) goes on the last piece."""
    pieces = split_text(text)
    sent: Message | None = None
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        sent = await message.answer(
            piece,
            parse_mode="HTML",
            reply_markup=reply_markup if last else None,
            **kwargs,  # type: ignore[arg-type]
        )
    assert sent is not None
    return sent


async def edit_in_place(bot: Bot, status: Message, text: str) -> str | None:
    """Rewrite a progress message; the text shown, or None when Telegram refused the edit."""
    try:
        await bot.edit_message_text(
            text, chat_id=status.chat.id, message_id=status.message_id, parse_mode="HTML"
        )
        return text
    except TelegramAPIError:
        return None
