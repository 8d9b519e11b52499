"""A date axis a trader reads at a glance: ticks in the chart's zone, the year said once.

Matplotlib's ConciseDateFormatter puts an offset label in the corner taken from the last tick
("2026-Dec" under a chart of mostly November); instead the ticks read "17 Nov" (or "14:00" over the
day on a short span, "Nov 2026" on a long one) and the axis label gives the whole span with its year
and zone: "17 Nov – 8 Dec 2026 (WIB)".
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, Locator

ZONE_NAMES = {"Asia/Jakarta": "WIB", "UTC": "UTC"}
INTRADAY_DAYS = 2.0  # spans up to this many days get hour ticks
DAY_TICKS_DAYS = 200.0  # up to this, day ticks ("17 Nov"); beyond, month ticks ("Nov 2026")


def _day(t: datetime, year: bool = False) -> str:
    return f"{t.day} {t:%b}" + (f" {t.year}" if year else "")


def tick_label(t: datetime, span_days: float) -> str:
    """A tick's label on an axis spanning `span_days` days."""
    if span_days <= INTRADAY_DAYS:
        return f"{t:%H:%M}\n{_day(t)}"
    return _day(t) if span_days <= DAY_TICKS_DAYS else f"{t:%b %Y}"


def span_label(first: datetime, last: datetime, zone_name: str) -> str:
    """`17 Nov – 8 Dec 2026 (WIB)`; the year on both ends when they differ; one day: `8 Dec 2026 (WIB)`."""
    if first.date() == last.date():
        return f"{_day(last, True)} ({zone_name})"
    return f"{_day(first, first.year != last.year)} – {_day(last, True)} ({zone_name})"


def locator_for(span_days: float, zone: tzinfo, max_ticks: int = 7) -> Locator:
    """Hour ticks on a short span, whole days (every k days) up to DAY_TICKS_DAYS, then months."""
    if span_days <= INTRADAY_DAYS:
        return mdates.AutoDateLocator(tz=zone, minticks=3, maxticks=max_ticks)
    if span_days <= DAY_TICKS_DAYS:
        return mdates.DayLocator(interval=max(1, math.ceil(span_days / max(max_ticks - 1, 1))), tz=zone)
    months = max(1, math.ceil(span_days / 30.4 / max(max_ticks - 1, 1)))
    return mdates.MonthLocator(interval=months, tz=zone)


def date_axis(
    ax: Axes, x_first: float, x_last: float, zone: tzinfo, zone_key: str, *, max_ticks: int = 7
) -> str:
    """Ticks and labels on `ax` for matplotlib date numbers x_first..x_last, in `zone`; returns the
    span label, which is also set as the axis label."""
    span = max(float(x_last - x_first), 0.0)
    ax.xaxis.set_major_locator(locator_for(span, zone, max_ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: tick_label(mdates.num2date(v, tz=zone), span)))
    label = span_label(
        mdates.num2date(x_first, tz=zone),
        mdates.num2date(x_last, tz=zone),
        ZONE_NAMES.get(zone_key, zone_key),
    )
    ax.set_xlabel(label)
    return label
