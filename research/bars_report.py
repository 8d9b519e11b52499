"""`python main.py bars`: what a bars file holds, for a person deciding whether to trust it: the range,
the spread (median, 90th percentile, widest) and every gap in the bars by kind. Weekends and the daily
break are expected; early closes and other holes are named with their times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING

from research.report_text import span
from trading.numbers import count

if TYPE_CHECKING:
    import polars as pl

BAR = timedelta(minutes=15)
FRIDAY, SATURDAY, SUNDAY, MONDAY = 4, 5, 6, 0
WEEKEND_CLOSE_HOUR = 20  # UTC: gold closes Friday 21:00 (summer) or 22:00 (winter); earlier is an early close
NAMED = 8  # other gaps listed one by one; the rest are counted


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime  # the first missing bar (UTC)
    end: datetime  # the next bar there is

    @property
    def missing(self) -> timedelta:
        return self.end - self.start

    @property
    def kind(self) -> str:
        """'weekend', 'daily break' (both expected), 'weekend, early close', or 'other'."""
        a, b = self.start, self.end
        if (
            a.weekday() in (FRIDAY, SATURDAY)
            and b.weekday() in (SATURDAY, SUNDAY, MONDAY)
            and self.missing <= timedelta(days=3)
        ):
            return (
                "weekend"
                if a.weekday() == SATURDAY or a.hour >= WEEKEND_CLOSE_HOUR
                else "weekend, early close"
            )
        if self.missing <= timedelta(hours=2) and 20 <= a.hour <= 23:  # the daily roll-over at 17:00 New York
            return "daily break"
        return "other"

    def describe(self) -> str:
        hours, rest = divmod(int(self.missing.total_seconds()) // 60, 60)
        days, hours = divmod(hours, 24)
        length = " ".join(
            p
            for p in (
                f"{days} d" if days else "",
                f"{hours} h" if hours else "",
                f"{rest} min" if rest else "",
            )
            if p
        )
        return f"{self.start:%a %d %b %H:%M} → {self.end:%a %d %b %H:%M} UTC ({length})"


def find_gaps(times: list[datetime]) -> list[Gap]:
    return [Gap(a + BAR, b) for a, b in pairwise(times) if b - a > BAR]


def spread_line(frame: pl.DataFrame, assumed: int | None) -> str:
    if assumed is not None:
        return f"spread ASSUMED {assumed} points on every bar (the file has none)"
    s = frame["spread"]
    return (
        f"spread (points): median {count(_number(s.median()))}, "
        f"90th percentile {count(_number(s.quantile(0.9, 'nearest')))}, widest {count(_number(s.max()))}"
    )


def _number(value: object) -> float | None:
    """A numeric column's statistic (None for an empty column)."""
    return float(value) if isinstance(value, int | float) else None


def summary_lines(frame: pl.DataFrame, assumed_spread: int | None = None) -> list[str]:
    times = frame["time"].to_list()
    lines = [f"{count(frame.height)} bars, {span(times[0], times[-1])}", spread_line(frame, assumed_spread)]
    found = find_gaps(times)
    by_kind: dict[str, list[Gap]] = {}
    for g in found:
        by_kind.setdefault(g.kind, []).append(g)
    expected = [
        f"{count(len(by_kind[k]))} {k}{'s' if len(by_kind[k]) != 1 else ''}"
        for k in ("weekend", "daily break")
        if by_kind.get(k)
    ]
    named = by_kind.get("weekend, early close", []) + by_kind.get("other", [])
    head = f"gaps: {', '.join(expected) or 'none'} (expected)" if expected else "gaps: none expected"
    if not named:
        lines.append(head + "; no other gap" if found else "gaps: none")
        return lines
    lines.append(f"{head}; {count(len(named))} more to look at:")
    for g in sorted(named, key=lambda x: x.start)[:NAMED]:
        lines.append(f"  {g.describe()}" + (", early close" if g.kind != "other" else ""))
    if len(named) > NAMED:
        lines.append(f"  and {count(len(named) - NAMED)} more")
    return lines
