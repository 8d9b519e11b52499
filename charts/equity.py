"""Equity curve with drawdown shading (and the balance as a step line), as PNG bytes.

Top panel: equity (open trades valued at the market), the balance (closed trades only, dashed), and
the gap below the running equity peak shaded red ("drawdown from the peak"). Bottom panel: that
drawdown in percent of the peak. A legend row between the panels names every line and shade.
Times may be aware (any zone) or naive (taken as UTC); the axis is labelled in `tz` (WIB by default),
ticks "17 Nov", the span and its year once below ("17 Nov – 8 Dec 2026 (WIB)"). With
`start=(time, balance)` the curve begins at the starting balance (a dotted reference line), so a first
sample taken after the first trades does not hide them; drawdown counts from there too. Optional
`halts` ((start, end or None, label) each) shade in grey the stretches where a loss limit stopped
trading, labelled at their start (stacked in rows when they would run into each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from charts.layout import GAP_PX, stack_rows
from charts.style import DARK, Theme, new_figure, no_data_figure, render_png, set_title, style_axes
from charts.timeaxis import date_axis

TimesLike = Sequence[datetime] | pl.Series | np.ndarray
ValuesLike = Sequence[float] | pl.Series | np.ndarray
Halt = tuple[datetime, datetime | None, str]  # start, end (None: to the end of the chart), label
HALT_LABEL_ROWS = 2


def equity_chart(
    times: TimesLike,
    equity: ValuesLike,
    balance: ValuesLike | None = None,
    title: str = "",
    tz: str = "Asia/Jakarta",
    *,
    start: tuple[datetime, float] | None = None,
    halts: Sequence[Halt] | None = None,
) -> bytes:
    """PNG bytes; empty input gives a small "no data" image instead of an error."""
    return render_png(equity_figure(times, equity, balance, title, tz, start=start, halts=halts))


def drawdown(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(running peak, drawdown in percent of the peak, <= 0) for an equity series; NaNs carry the last peak."""
    eq = np.asarray(equity, dtype=np.float64)
    peak = np.fmax.accumulate(np.where(np.isfinite(eq), eq, -np.inf))
    peak = np.where(np.isfinite(peak), peak, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(peak > 0, (eq - peak) / peak * 100.0, 0.0)
    return peak, np.nan_to_num(pct, nan=0.0)


def equity_figure(
    times: TimesLike,
    equity: ValuesLike,
    balance: ValuesLike | None = None,
    title: str = "",
    tz: str = "Asia/Jakarta",
    theme: Theme = DARK,
    *,
    start: tuple[datetime, float] | None = None,
    halts: Sequence[Halt] | None = None,
) -> Figure:
    """The same chart as an unrendered Figure."""
    t = _utc_datetime64(times)
    eq = _floats(equity)
    if t.size != eq.size:
        raise ValueError(f"equity has {eq.size} values but times has {t.size}")
    bal = _floats(balance) if balance is not None else None
    if bal is not None and bal.size != eq.size:
        raise ValueError(f"balance has {bal.size} values but equity has {eq.size}")
    if start is not None:
        t0 = _utc_datetime64([start[0]])
        if not np.isfinite(start[1]):
            raise ValueError(f"start balance must be a finite number, got {start[1]!r}")
        if t.size == 0 or t0[0] < t[~np.isnat(t)].min(initial=t0[0] + np.timedelta64(1, "us")):
            t = np.concatenate([t0, t])
            eq = np.concatenate([[float(start[1])], eq])
            bal = np.concatenate([[float(start[1])], bal]) if bal is not None else None
    keep = np.isfinite(eq) & ~np.isnat(t)
    if not keep.any():
        return no_data_figure("no data", title, theme)
    t, eq = t[keep], eq[keep]
    bal = bal[keep] if bal is not None else None
    x = mdates.date2num(t)
    peak, dd_pct = drawdown(eq)
    zone = ZoneInfo(tz)

    fig = new_figure(theme)
    ax = fig.add_axes((0.1, 0.38, 0.86, 0.54))
    ax_dd = fig.add_axes((0.1, 0.13, 0.86, 0.17), sharex=ax)
    for a in (ax, ax_dd):
        style_axes(a, theme)

    entries: list[Any] = []
    below = eq < peak
    if below.any():
        ax.fill_between(
            x, eq, peak, where=below, color=theme.down, alpha=0.3, lw=0, gid="drawdown", interpolate=True
        )
        entries.append(Patch(facecolor=theme.down, alpha=0.45, label="drawdown from peak"))
    if bal is not None:
        entries.append(
            ax.step(
                x,
                bal,
                where="post",
                color=theme.warn,
                linewidth=1.2,
                linestyle="--",
                label="balance",
                gid="balance",
                zorder=3,
            )[0]
        )
    entries.insert(
        0, ax.plot(x, eq, color=theme.accent, linewidth=2.0, label="equity", gid="equity", zorder=4)[0]
    )
    if start is not None:
        entries.append(
            ax.axhline(
                float(start[1]),
                color=theme.muted,
                linestyle=":",
                linewidth=1.0,
                zorder=1,
                gid="start",
                label=f"start {float(start[1]):,.2f}",
            )
        )
    if halts:
        entries.append(Patch(facecolor=theme.muted, alpha=0.4, label="halted by a loss limit"))
    ax_dd.fill_between(x, dd_pct, 0.0, color=theme.down, alpha=0.5, lw=0, gid="drawdown_pct")
    ax_dd.set_ylabel("drawdown %", fontsize=theme.note_size)
    ax_dd.set_ylim(min(float(dd_pct.min()) * 1.15, -0.5), 0.0)

    if x.size == 1:
        ax.set_xlim(x[0] - 1 / 24, x[0] + 1 / 24)
    lo, hi = ax.get_xlim()
    date_axis(ax_dd, max(lo, float(x[0])), min(hi, float(x[-1])), zone, tz)
    ax_dd.xaxis.label.set_color(theme.muted)
    ax_dd.xaxis.label.set_fontsize(theme.note_size)
    ax.tick_params(labelbottom=False)
    if halts:  # after the x range is final: the labels are measured to keep them apart
        _draw_halts(ax, ax_dd, halts, float(x[-1]), theme)
    # one row between the panels, outside both: it names every line and shade without covering the curve
    legend = fig.legend(
        handles=entries,
        loc="center",
        bbox_to_anchor=(0.53, 0.34),
        ncol=len(entries),
        fontsize=theme.note_size,
        frameon=False,
        labelcolor=theme.text,
        handlelength=1.6,
        columnspacing=1.2,
    )
    legend.set_gid("legend")

    subtitle = f"equity {eq[-1]:,.2f} · max drawdown {dd_pct.min():.1f}%"
    set_title(fig, ax, title, subtitle, theme)
    return fig


def _draw_halts(ax: Axes, ax_dd: Axes, halts: Sequence[Halt], x_end: float, theme: Theme) -> None:
    """Shade each halt on both panels and label it at its start along the top of the equity panel.

    A label equal to the previous halt's is left out (the shade and the legend say it); labels that
    would run into another go on a second row, and those that fit on neither are left out too."""
    texts = []
    previous = None
    for halt_start, halt_end, label in halts:
        x0 = float(mdates.date2num(_utc_datetime64([halt_start])[0]))
        x1 = float(mdates.date2num(_utc_datetime64([halt_end])[0])) if halt_end is not None else x_end
        for a in (ax, ax_dd):
            a.axvspan(x0, max(x1, x0), color=theme.muted, alpha=0.25, lw=0, gid="halt")
        if label and label != previous:
            texts.append(
                ax.annotate(
                    label,
                    (x0, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -3),
                    textcoords="offset points",
                    va="top",
                    ha="left",
                    fontsize=theme.note_size,
                    color=theme.text,
                    gid="halt_label",
                    bbox={"facecolor": theme.panel, "alpha": 0.75, "edgecolor": "none", "pad": 1.0},
                )
            )
        previous = label
    if not texts:
        return
    ax.set_xlim(*ax.get_xlim())  # fix the autoscaled range the spans were drawn in before measuring
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    right = ax.get_window_extent(renderer).x1
    points_per_px = 72.0 / ax.figure.dpi
    boxes = []
    for text in texts:  # a label running past the right edge is pulled back inside
        box = text.get_window_extent(renderer)
        pull = max(0.0, box.x1 - right + GAP_PX)
        text.xyann = (3 - pull * points_per_px, -3)
        boxes.append((box.x0 - pull, box.x1 - pull, box.height))
    rows = stack_rows([b[0] for b in boxes], [b[1] for b in boxes])
    for text, (_, _, height), row in zip(texts, boxes, rows, strict=True):
        if row >= HALT_LABEL_ROWS:
            text.remove()
            continue
        x, _ = text.xyann
        text.xyann = (x, -3 - row * (height + GAP_PX) * points_per_px)


def _floats(values: ValuesLike) -> np.ndarray:
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _utc_datetime64(times: TimesLike) -> np.ndarray:
    """Any of the accepted time inputs -> naive datetime64[us] in UTC."""
    if isinstance(times, pl.Series):
        if not isinstance(times.dtype, pl.Datetime):
            raise ValueError(f"times must be a Datetime series, got {times.dtype}")
        if times.dtype.time_zone is not None:
            times = times.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return times.dt.cast_time_unit("us").to_numpy()
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[us]")
    out = []
    for value in times:
        if not isinstance(value, datetime):
            raise ValueError(f"times must be datetimes, got {type(value).__name__}")
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        out.append(value)
    return np.array(out, dtype="datetime64[us]")
