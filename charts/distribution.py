"""How the trades' results spread: a histogram of P/L per trade, losses red, wins green, as PNG bytes.

Bins are of equal width and one edge sits at zero, so no bar mixes wins and losses. A dashed line
marks the average trade (the expectancy); the subtitle gives the count, win rate and the average
win and loss. A legend names the colours and the line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from charts.style import DARK, Theme, new_figure, no_data_figure, render_png, set_title, style_axes

MAX_BINS = 30


def pnl_distribution_chart(
    profits: Sequence[float] | np.ndarray, title: str = "", currency: str = "$"
) -> bytes:
    """PNG bytes; no finite value gives a small "no trades" image instead of an error."""
    return render_png(pnl_distribution_figure(profits, title, currency))


def zero_edged_bins(values: np.ndarray, max_bins: int = MAX_BINS) -> np.ndarray:
    """Bin edges of one width covering `values`, one of them at 0 (numpy's 'auto' width, at most `max_bins`)."""
    lo, hi = float(min(values.min(), 0.0)), float(max(values.max(), 0.0))
    span = hi - lo
    if span <= 0:
        return np.array([-0.5, 0.0, 0.5])
    width = float(np.diff(np.histogram_bin_edges(values, bins="auto")[:2])[0]) if values.size > 1 else span
    width = max(width, span / max_bins) or span
    first, last = np.floor(lo / width), np.ceil(hi / width)
    if last * width <= hi:  # a value on the top edge would fall outside: one more bin
        last += 1
    return np.arange(first, last + 1) * width


def _money(x: float, currency: str) -> str:
    """`+$12.30`; the currency sign escaped, since two `$` in one matplotlib text would start mathtext."""
    return f"{'+' if x >= 0 else '-'}{currency.replace('$', chr(92) + '$')}{abs(x):,.2f}"


def pnl_distribution_figure(
    profits: Sequence[float] | np.ndarray, title: str = "", currency: str = "$", theme: Theme = DARK
) -> Figure:
    """The same chart as an unrendered Figure."""
    values = np.asarray([np.nan if v is None else v for v in profits], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return no_data_figure("no closed trades", title, theme)
    edges = zero_edged_bins(values)
    counts, _ = np.histogram(values, bins=edges)
    fig = new_figure(theme)
    ax = fig.add_axes((0.08, 0.2, 0.88, 0.7))
    style_axes(ax, theme)
    lefts = edges[:-1]
    colors = np.where(lefts >= 0, theme.up, theme.down)
    ax.bar(
        lefts,
        counts,
        width=np.diff(edges),
        align="edge",
        color=colors,
        edgecolor=theme.panel,
        linewidth=0.8,
        zorder=2,
        gid="pnl_bin",
    )
    ax.axvline(0.0, color=theme.muted, linewidth=1.0, zorder=1)
    mean = float(values.mean())
    average = ax.axvline(
        mean,
        color=theme.accent,
        linestyle="--",
        linewidth=2.0,
        zorder=3,
        gid="average",
        label=f"average trade {_money(mean, currency)}",
    )
    ax.set_xlabel(
        f"P/L per trade ({currency.replace('$', chr(92) + '$')})", fontsize=theme.note_size, color=theme.muted
    )
    ax.set_ylabel("trades", fontsize=theme.note_size)
    locator = ax.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default AutoLocator is one
        locator.set_params(integer=True)

    wins, losses = values[values > 0], values[values < 0]
    entries = [
        Patch(facecolor=theme.up, label=f"wins ({wins.size})"),
        Patch(facecolor=theme.down, label=f"losses ({losses.size})"),
        average,
    ]
    legend = fig.legend(
        handles=entries,
        loc="lower center",
        bbox_to_anchor=(0.52, 0.0),
        ncol=len(entries),
        fontsize=theme.note_size,
        frameon=False,
        labelcolor=theme.text,
    )
    legend.set_gid("legend")
    parts = [f"{values.size} trades", f"win rate {wins.size / values.size:.0%}"]
    if wins.size:
        parts.append(f"avg win {_money(float(wins.mean()), currency)}")
    if losses.size:
        parts.append(f"avg loss {_money(float(losses.mean()), currency)}")
    set_title(fig, ax, title, " · ".join(parts), theme)
    return fig
