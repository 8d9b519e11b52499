"""One dark, phone-readable theme and the figure plumbing every chart shares.

Charts are built on a bare `Figure` with its own `FigureCanvasAgg`: no pyplot, no global state,
no rcParams edits, so a chart can be drawn in a worker thread while another one renders.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class Theme:
    """Colours (matplotlib colour strings) and sizes. Sizes are points at `dpi`."""

    background: str = "#0f1419"
    panel: str = "#161c23"
    grid: str = "#2a323c"
    text: str = "#e6e6e6"
    muted: str = "#8b96a3"
    up: str = "#26a69a"
    down: str = "#ef5350"
    accent: str = "#42a5f5"
    warn: str = "#ffb74d"
    bull_zone: str = "#26a69a"
    bear_zone: str = "#ef5350"
    bull_ob: str = "#1e88e5"
    bear_ob: str = "#ab47bc"
    entry: str = "#42a5f5"
    stop: str = "#ef5350"
    target: str = "#66bb6a"
    regime_low: str = "#1565c0"
    regime_medium: str = "#f9a825"
    regime_high: str = "#c62828"
    zone_alpha: float = 0.18
    regime_alpha: float = 0.10
    title_size: float = 16.0
    label_size: float = 12.0
    tick_size: float = 11.0
    note_size: float = 10.0
    width_px: int = 1200
    height_px: int = 700
    dpi: int = 120


DARK = Theme()


def new_figure(theme: Theme = DARK, *, width_px: int | None = None, height_px: int | None = None) -> Figure:
    """A blank figure with an Agg canvas attached, sized in pixels."""
    w = width_px or theme.width_px
    h = height_px or theme.height_px
    fig = Figure(figsize=(w / theme.dpi, h / theme.dpi), dpi=theme.dpi, facecolor=theme.background)
    FigureCanvasAgg(fig)
    return fig


def style_axes(ax: Axes, theme: Theme = DARK) -> None:
    """Dark panel, light ticks, faint grid, no top/right frame."""
    ax.set_facecolor(theme.panel)
    ax.tick_params(colors=theme.text, labelsize=theme.tick_size, length=4)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(theme.grid)
    ax.grid(True, color=theme.grid, linewidth=0.7, alpha=0.8)
    ax.set_axisbelow(True)
    ax.yaxis.label.set_color(theme.text)
    ax.xaxis.label.set_color(theme.text)


def set_title(fig: Figure, ax: Axes, title: str, subtitle: str = "", theme: Theme = DARK) -> Text | None:
    """Bold title top-left, a muted subtitle (last price, time) top-right; the title's Text (None without one)."""
    shown = None
    if title:
        shown = ax.set_title(
            title, loc="left", color=theme.text, fontsize=theme.title_size, fontweight="bold"
        )
    if subtitle:
        ax.set_title(subtitle, loc="right", color=theme.muted, fontsize=theme.label_size)
    return shown


def render_png(fig: Figure) -> bytes:
    """Render through the figure's own Agg canvas; returns PNG bytes."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # zlib level 1: ~40 ms faster than the default 6 for ~20 % more bytes, which Telegram does not mind
    canvas.print_png(buf, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def no_data_figure(message: str = "no data", title: str = "", theme: Theme = DARK) -> Figure:
    """A small figure that says there is nothing to draw (used instead of raising on empty input)."""
    fig = new_figure(theme, width_px=600, height_px=300)
    fig.text(0.5, 0.5, message, ha="center", va="center", color=theme.muted, fontsize=theme.title_size)
    if title:
        fig.text(0.04, 0.9, title, ha="left", va="top", color=theme.text, fontsize=theme.label_size)
    return fig


def no_data_png(message: str = "no data", title: str = "", theme: Theme = DARK) -> bytes:
    return render_png(no_data_figure(message, title, theme))
