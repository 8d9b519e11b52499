"""Live and its shadow challengers: closed-trade equity curves overlaid on one chart, as PNG bytes.

Each curve starts at its strategy's start (time, balance) and steps at every closed trade; curves are
drawn in % of their own start balance so accounts of different sizes compare (the legend gives the
net money). Live is drawn thicker. Times aware (any zone) or naive (UTC); the axis is in `tz`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from matplotlib import dates as mdates

from charts.style import DARK, new_figure, no_data_png, render_png, set_title, style_axes
from charts.timeaxis import date_axis

PALETTE = ("#42a5f5", "#ffb74d", "#ab47bc", "#66bb6a", "#ef5350", "#26c6da")


@dataclass(frozen=True, slots=True)
class Curve:
    label: str
    start: tuple[datetime, float]  # (when it started, balance then)
    times: Sequence[datetime]  # close times of its trades, oldest first
    profits: Sequence[float]  # net profit of each
    live: bool = False


def shadow_equity_chart(
    curves: Sequence[Curve], now: datetime, title: str = "Live and challengers", tz: str = "Asia/Jakarta"
) -> bytes:
    """PNG bytes; without any curve a small "no data" image."""
    if not curves:
        return no_data_png("no strategies to show", title)
    zone = ZoneInfo(tz)
    fig = new_figure()
    ax = fig.add_axes((0.08, 0.16, 0.9, 0.72))
    style_axes(ax)
    first = min(_aware(c.start[0]) for c in curves)
    last = max(_aware(now), first)
    colours = iter(PALETTE)
    for c in curves:
        balance0 = c.start[1] if c.start[1] > 0 else 1.0
        xs = [_aware(c.start[0])]
        ys = [0.0]
        running = 0.0
        for t, p in zip(c.times, c.profits, strict=True):
            running += p
            xs.append(_aware(t))
            ys.append(running / balance0 * 100)
        xs.append(last)
        ys.append(ys[-1])
        colour = DARK.text if c.live else next(colours, DARK.muted)
        ax.step(
            mdates.date2num(xs),
            ys,
            where="post",
            color=colour,
            linewidth=2.6 if c.live else 1.6,
            label=f"{c.label}: {'+' if running >= 0 else '-'}${abs(running):,.2f} ({len(c.profits)} trades)",
        )
    ax.axhline(0.0, color=DARK.muted, linewidth=0.8, linestyle=":")
    ax.set_ylabel("net P/L, % of start balance", color=DARK.text)
    x0, x1 = mdates.date2num(first), mdates.date2num(last)
    ax.set_xlim(x0, x1 if x1 > x0 else x0 + 1 / 24)
    date_axis(ax, x0, x1 if x1 > x0 else x0 + 1 / 24, zone, tz)
    legend = ax.legend(
        loc="upper left",
        fontsize=DARK.note_size,
        facecolor=DARK.panel,
        edgecolor=DARK.grid,
        labelcolor=DARK.text,
    )
    legend.set_gid("legend")
    set_title(fig, ax, title, "closed trades; each curve from its own start")
    return render_png(fig)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
