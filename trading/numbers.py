"""Numbers as a trader reads them, in one style for the chat, the console and the CLI reports.

Plain text (no HTML): dollars `$1,234.56`, signed dollars `+$1,234.56` / `-$12.00`, prices `3,243.03`,
counts `11,800`, percentages `52.3%`. None reads `—` everywhere.
"""

from __future__ import annotations

DASH = "—"


def usd(x: float | None) -> str:
    """Unsigned dollars: $1,234.56 (a negative amount keeps its sign: -$12.00)."""
    if x is None:
        return DASH
    return f"{'-' if x < 0 else ''}${abs(x):,.2f}"


def signed_usd(x: float | None) -> str:
    """Signed dollars: +$1,234.56 / -$12.00 (zero is +$0.00)."""
    if x is None:
        return DASH
    return f"{'-' if x < 0 else '+'}${abs(x):,.2f}"


def price(x: float | None, digits: int = 2) -> str:
    """A gold price with thousands separators: 3,243.03."""
    return DASH if x is None else f"{x:,.{digits}f}"


def count(n: int | float | None) -> str:
    """A whole count with thousands separators: 11,800."""
    return DASH if n is None else f"{int(n):,}"


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.523 -> 52.3%."""
    return DASH if x is None else f"{x:.{digits}%}"


def signed_num(x: float | None, digits: int = 2) -> str:
    """A signed plain number with separators: +2,287.40 / -3.10."""
    return DASH if x is None else f"{x:+,.{digits}f}"
