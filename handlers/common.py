"""Small helpers every handler uses: HTML escaping, money and time formats, splitting long replies.

Replies are HTML (`parse_mode="HTML"`); anything that came from a user or the outside world goes
through `esc`. Telegram refuses texts over 4096 characters, so `reply` splits on line boundaries.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram.types import Message

from handlers.clock import market_clock_line

MAX_MESSAGE = 4096
SPLIT_AT = 4000  # leaves room for entities Telegram counts differently


@dataclass(slots=True)
class AuditNote:
    """Handed to every handler by the access middleware; a handler may set `result` for the audit log."""

    result: str = "ok"


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def money(x: float) -> str:
    return f"${x:,.2f}"


def signed(x: float) -> str:
    return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}"


def clock_line(now: datetime) -> str:
    return market_clock_line(now)  # one clock per message, labelled on a replayed market


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


def section(title: str, items: list[str]) -> str:
    """A bold title, then `├ item` lines with `└ ` on the last (the original's layout); "" when empty."""
    if not items:
        return ""
    lines = [f"<b>{title}</b>"]
    lines += [f"{'└' if i == len(items) - 1 else '├'} {item}" for i, item in enumerate(items)]
    return "\n".join(lines)


def join_sections(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


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


async def reply(message: Message, text: str, **kwargs: object) -> Message:
    """Answer in HTML, split under the size limit; the keyboard (if any) goes on the last piece."""
    pieces = split_text(text)
    markup = kwargs.pop("reply_markup", None)
    sent: Message | None = None
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        sent = await message.answer(
            piece, parse_mode="HTML", reply_markup=markup if last else None, **kwargs  # type: ignore[arg-type]
        )
    assert sent is not None
    return sent
