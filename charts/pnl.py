"""Daily profit/loss bars (green up, red down) with the running total, as PNG bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
from matplotlib.figure import Figure

from charts.style import DARK, Theme, new_figure, no_data_figure, render_png, set_title, style_axes


def daily_pnl_chart(
    days: Sequence[date], pnl: Sequence[float], title: str = "", currency: str = "$"
) -> bytes:
    """PNG bytes; empty input gives a small "no data" image instead of an error."""
    return render_png(daily_pnl_figure(days, pnl, title, currency))


def daily_pnl_figure(
    days: Sequence[date], pnl: Sequence[float], title: str = "", currency: str = "$", theme: Theme = DARK
) -> Figure:
    """The same chart as an unrendered Figure. Days are drawn in the order given, one slot each."""
    values = np.asarray([np.nan if v is None else v for v in pnl], dtype=np.float64)
    if len(days) != values.size:
        raise ValueError(f"pnl has {values.size} values but days has {len(days)}")
    keep = np.isfinite(values)
    if not keep.any():
        return no_data_figure("no data", title, theme)
    labels = [d.strftime("%d %b") for d, k in zip(days, keep, strict=True) if k]
    values = values[keep]
    x = np.arange(values.size)

    fig = new_figure(theme)
    ax = fig.add_axes((0.1, 0.14, 0.86, 0.76))
    style_axes(ax, theme)
    colors = np.where(values >= 0, theme.up, theme.down)
    ax.bar(x, values, color=colors, width=0.7, zorder=2, gid="pnl_bar")
    ax.axhline(0.0, color=theme.muted, linewidth=1.0, zorder=1)
    ax.plot(
        x,
        np.cumsum(values),
        color=theme.accent,
        linewidth=2.0,
        marker="o",
        markersize=4,
        zorder=3,
        gid="cumulative",
    )
    step = max(1, int(np.ceil(values.size / 10)))
    ax.set_xticks(x[::step])
    ax.set_xticklabels(labels[::step])
    ax.set_xlim(-0.7, values.size - 0.3)
    total = float(values.sum())
    wins = int((values > 0).sum())
    subtitle = (
        f"total {'+' if total >= 0 else '-'}{currency}{abs(total):,.2f} · {wins}/{values.size} green days"
    )
    set_title(fig, ax, title, subtitle, theme)
    return fig
