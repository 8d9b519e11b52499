"""Candlestick chart with SMC overlays, open positions and regime shading, as PNG bytes.

Bars are drawn on an integer axis (one slot per bar, so weekend gaps take no room) labelled with
WIB times. The SMC frame is aligned row-for-row with the bars, or joined on `time` when it has one.
Every overlay artist carries a gid ("fvg", "ob", "bos", "choch", "swing_high", "swing_low",
"position_entry", "position_sl", "position_tp", "position_tag", "regime", "regime_label", "closed_entry",
"closed_exit", "legend") so tests can count what was drawn. A legend names the colours actually drawn (FVG,
order blocks, the regimes shaded, closed trades); bars of unknown regime are not shaded, and the regime
label ("regime: low", or "regime unknown") sits on the title line. Price tags of positions whose levels
are close are spread apart, and BOS/CHoCH labels are moved off each other and off the tags, so no label
covers another. The overlays are drawn by `charts.smc_overlay`, `charts.regime_shading` and
`charts.trade_marks`; this module lays out the axes, the candles, the legend and the time labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from charts.regime_shading import REGIME_NAMES, draw_regime_label, draw_regimes, regime_colors, regime_name
from charts.smc_overlay import align_smc, draw_smc, place_break_labels
from charts.style import DARK, Theme, new_figure, no_data_figure, render_png, set_title, style_axes
from charts.trade_marks import ChartPosition, ChartTrade, draw_positions, draw_trades

OHLC = ("open", "high", "low", "close")
TZ_ABBREVIATIONS = {"Asia/Jakarta": "WIB", "UTC": "UTC"}


def candlestick_chart(
    bars: pl.DataFrame,
    smc: pl.DataFrame | None = None,
    positions: Sequence[ChartPosition] = (),
    regimes: pl.Series | Sequence[int | None] | None = None,
    title: str = "",
    tz: str = "Asia/Jakarta",
    *,
    trades: Sequence[ChartTrade] = (),
    regime_now: str | None = None,
) -> bytes:
    """PNG bytes of the chart; empty bars give a small "no data" image instead of an error."""
    return render_png(
        candlestick_figure(bars, smc, positions, regimes, title, tz, trades=trades, regime_now=regime_now)
    )


def candlestick_figure(
    bars: pl.DataFrame,
    smc: pl.DataFrame | None = None,
    positions: Sequence[ChartPosition] = (),
    regimes: pl.Series | Sequence[int | None] | None = None,
    title: str = "",
    tz: str = "Asia/Jakarta",
    theme: Theme = DARK,
    *,
    trades: Sequence[ChartTrade] = (),
    regime_now: str | None = None,
) -> Figure:
    """The same chart as an unrendered Figure (for tests and for callers that add to it).

    `regime_now` is the regime the bot decides with (the analysis' name, as /status shows it); the
    corner label uses it, so the chart and the status never disagree. Without it, the last bar's shade."""
    if bars is None or bars.is_empty():
        return no_data_figure("no data", title, theme)
    missing = [col for col in ("time", *OHLC) if col not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks column(s) {missing}; needs time, open, high, low, close")
    opens, highs, lows, closes = (bars[col].cast(pl.Float64).to_numpy() for col in OHLC)
    if not np.isfinite(closes).any():
        return no_data_figure("no data", title, theme)
    n = bars.height
    labels = _wib_labels(bars["time"], tz)
    aligned = align_smc(bars, smc)

    fig = new_figure(theme)
    ax = fig.add_axes((0.045, 0.16, 0.865, 0.75))  # room below the time labels for the legend row
    style_axes(ax, theme)
    ax.yaxis.tick_right()

    right_pad = max(6.0, n * 0.15)
    ax.set_xlim(-1.0, n - 1 + right_pad)
    levels = [lvl for p in positions for lvl in (p.entry, p.stop, p.target) if lvl is not None]
    ax.set_ylim(*_price_limits(lows, highs, levels))

    shaded = draw_regimes(ax, regimes, n, theme) if regimes is not None else set()
    _draw_candles(ax, opens, highs, lows, closes, theme)
    if aligned is not None:
        draw_smc(ax, aligned, highs, lows, closes, theme)
    draw_trades(ax, trades, bars["time"], theme)
    draw_positions(ax, positions, n, theme)
    _draw_last_price(ax, closes, n, theme)
    _draw_legend(ax, theme, shaded)
    _set_time_ticks(ax, labels, n)
    tz_name = TZ_ABBREVIATIONS.get(tz, tz)
    last = closes[np.flatnonzero(np.isfinite(closes))[-1]]
    shown = set_title(fig, ax, title, f"{last:.2f} · {labels[-1].replace(chr(10), ' ')} {tz_name}", theme)
    if regimes is not None or regime_now is not None:
        draw_regime_label(ax, shown, regime_name(regimes, regime_now), theme)
    place_break_labels(ax)
    return fig


def _wib_labels(times: pl.Series, tz: str) -> list[str]:
    if not isinstance(times.dtype, pl.Datetime):
        raise ValueError(f"bars 'time' must be a Datetime column, got {times.dtype}")
    if times.dtype.time_zone is None:
        times = times.dt.replace_time_zone("UTC")
    return times.dt.convert_time_zone(tz).dt.strftime("%H:%M\n%d %b").fill_null("").to_list()


def _price_limits(low: np.ndarray, high: np.ndarray, extra: list[float]) -> tuple[float, float]:
    lo = float(np.nanmin(np.concatenate([low[np.isfinite(low)], extra]) if extra else np.nanmin(low)))
    hi = float(np.nanmax(np.concatenate([high[np.isfinite(high)], extra]) if extra else np.nanmax(high)))
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.001, 0.5)
    return lo - pad, hi + pad


def _draw_candles(
    ax: Axes, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, theme: Theme
) -> None:
    ok = np.isfinite(opens) & np.isfinite(highs) & np.isfinite(lows) & np.isfinite(closes)
    x = np.flatnonzero(ok).astype(np.float64)
    opens, highs, lows, closes = opens[ok], highs[ok], lows[ok], closes[ok]
    colors = np.where(closes >= opens, theme.up, theme.down)
    wicks = np.stack([np.column_stack([x, lows]), np.column_stack([x, highs])], axis=1)
    ax.add_collection(LineCollection(list(wicks), colors=colors, linewidths=1.0, zorder=2))
    span = float(np.max(highs) - np.min(lows)) if x.size else 1.0
    body_lo = np.minimum(opens, closes)
    body_hi = np.maximum(np.maximum(opens, closes), body_lo + span * 0.002)  # a doji stays visible
    half = 0.35
    boxes = np.stack(
        [
            np.column_stack([x - half, body_lo]),
            np.column_stack([x - half, body_hi]),
            np.column_stack([x + half, body_hi]),
            np.column_stack([x + half, body_lo]),
        ],
        axis=1,
    )
    ax.add_collection(
        PolyCollection(list(boxes), facecolors=colors, edgecolors=colors, linewidths=0.5, zorder=3)
    )


def _draw_legend(ax: Axes, theme: Theme, shaded: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """Name every colour that is on the chart (only those: a regime is listed only when it is shaded)."""
    drawn = {a.get_gid() for a in (*ax.patches, *ax.collections, *ax.lines, *ax.texts)}
    entries: list[Any] = []

    def patch(color: str, label: str, alpha: float = 0.5) -> None:
        entries.append(Patch(facecolor=color, edgecolor=color, alpha=alpha, label=label))

    if "fvg" in drawn:
        patch(theme.bull_zone, "bull FVG")
        patch(theme.bear_zone, "bear FVG")
    if "ob" in drawn:
        patch(theme.bull_ob, "bull OB")
        patch(theme.bear_ob, "bear OB")
    for value, color in regime_colors(theme).items():
        if value in shaded:
            patch(color, f"{REGIME_NAMES[value]} vol", alpha=0.45)
    if "closed_exit" in drawn:
        for color, name in ((theme.up, "closed win"), (theme.down, "closed loss")):
            entries.append(Line2D([], [], color=color, marker="X", linestyle=":", label=name))
    if not entries:
        return
    # one row under the time axis, outside the plot: it names the colours without covering candles
    legend = ax.figure.legend(
        handles=entries,
        loc="lower center",
        bbox_to_anchor=(0.48, 0.0),
        ncol=len(entries),
        fontsize=theme.note_size,
        frameon=False,
        labelcolor=theme.text,
        handlelength=1.0,
        handletextpad=0.4,
        columnspacing=0.9,
    )
    legend.set_gid("legend")


def _draw_last_price(ax: Axes, closes: np.ndarray, n: int, theme: Theme) -> None:
    last = float(closes[np.flatnonzero(np.isfinite(closes))[-1]])
    ax.axhline(last, color=theme.muted, linestyle=":", linewidth=1.0, zorder=2)


def _set_time_ticks(ax: Axes, labels: list[str], n: int) -> None:
    step = max(1, int(np.ceil(n / 6)))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[i] for i in ticks])
