"""The one HTML kit of the chat: `trading.numbers` (plain-text numbers in one style) with escaping on top.

Every reply and notification is Telegram HTML; anything dynamic goes through `esc`. Numbers come
from `trading.numbers` so the chat, the console and the CLI reports write them alike:
`$1,234.56`, `+$1,234.56` / `-$12.00`, prices `3,243.03`, counts `11,800`, `52%`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from handlers.clock import market_clock_line
from trading import numbers

DASH = numbers.DASH


def esc(value: object) -> str:
    """HTML-escape any value for Telegram (None -> "—")."""
    return DASH if value is None else html.escape(str(value), quote=False)


def code(text: object) -> str:
    return f"<code>{esc(text)}</code>"


def clip(text: object, limit: int = 200) -> str:
    """Shorten a free-text value before escaping (so an entity is never cut in half)."""
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def usd(x: float | None) -> str:
    """Dollars: $1,234.56 (a negative amount keeps its sign)."""
    return numbers.usd(x)


def signed(x: float | None) -> str:
    """Signed dollars: +$1,234.56 / -$12.00."""
    return numbers.signed_usd(x)


def price(x: float | None, digits: int = 2) -> str:
    """A gold price with separators (0 or None: no price, "—")."""
    return DASH if not x else numbers.price(x, digits)


def count(n: int | float | None) -> str:
    return numbers.count(n)


def pct(x: float | None, digits: int = 0) -> str:
    return numbers.pct(x, digits)


def plural(n: int | float, word: str, many: str = "") -> str:
    """`1 trade`, `2 trades`, `11,800 bars` (count with separators, the word agreeing)."""
    return f"{numbers.count(n)} {word if int(n) == 1 else (many or word + 's')}"


def lot(x: float) -> str:
    return f"{x:g}"


def section(title: str, items: Sequence[str]) -> str:
    """A bold title, then `├ item` lines with `└ ` on the last; "" when no item is non-empty."""
    items = [i for i in items if i]
    if not items:
        return ""
    lines = [f"<b>{title}</b>"]
    lines += [("└ " if n == len(items) - 1 else "├ ") + item for n, item in enumerate(items)]
    return "\n".join(lines)


def join_sections(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def clock_line(t: datetime, with_date: bool = False) -> str:
    """The one clock of a message: the market's, labelled when it is a replay (handlers.clock)."""
    return esc(market_clock_line(t, with_date))


def with_clock(text: str, t: datetime) -> str:
    """A reply with its clock line under it."""
    return join_sections(text, clock_line(t))


def compose(header: str, *blocks: str, time: datetime, with_date: bool = False) -> str:
    """Header, the non-empty blocks separated by blank lines, then the clock line."""
    parts = [header, *[b for b in blocks if b], clock_line(time, with_date)]
    return "\n\n".join(parts)


def fmt_duration(seconds: float) -> str:
    """`45s`, `12m`, `3h 05m`, `2d 04h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def field(obj: object, name: str, default: Any = None) -> Any:
    """An event field from a record or a mapping alike."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)
