"""The SMC overlays of the candlestick chart: FVG and order-block zones, swing markers, BOS/CHoCH labels
moved off each other and off the position tags. Every artist carries a gid (see `charts.candles`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from charts.layout import GAP_PX, Box, push_clear
from charts.style import Theme
from charts.zones import Zone, as_flags, fair_value_gap_zones, order_block_zones, swing_pivots

BREAK_OFFSET_PT = 9.0  # a BOS/CHoCH label's distance from its candle, clear of the swing marker


def align_smc(bars: pl.DataFrame, smc: pl.DataFrame | None) -> pl.DataFrame | None:
    if smc is None or smc.is_empty():
        return None
    if "time" in smc.columns and not (smc.height == bars.height and smc["time"].equals(bars["time"])):
        keyed = smc.with_columns(pl.col("time").cast(bars["time"].dtype)).unique("time", keep="last")
        return bars.select("time").join(keyed, on="time", how="left", maintain_order="left")
    if smc.height != bars.height:
        raise ValueError(
            f"smc frame has {smc.height} rows but bars has {bars.height}; give it the same rows or a 'time' column"
        )
    return smc


def _column(frame: pl.DataFrame, *names: str) -> np.ndarray | None:
    """First present column among `names` as float64 (null -> NaN, booleans -> 0/1)."""
    for name in names:
        if name in frame.columns:
            return frame[name].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    return None


def _draw_zones(
    ax: Axes, zones: list[Zone], right_edge: float, gid: str, bull: str, bear: str, alpha: float
) -> None:
    for z in zones:
        end = z.end + 0.5 if z.closed else right_edge
        color = bull if z.direction > 0 else bear
        ax.add_patch(
            Rectangle(
                (z.start - 0.5, z.bottom),
                end - (z.start - 0.5),
                z.top - z.bottom,
                facecolor=color,
                edgecolor=color,
                alpha=alpha * (0.6 if z.closed else 1.0),
                linewidth=0.8,
                zorder=1,
                gid=gid,
            )
        )


def draw_smc(
    ax: Axes, smc: pl.DataFrame, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, theme: Theme
) -> None:
    right_edge = ax.get_xlim()[1]
    fvg = _column(smc, "fvg", "fvg_signal")
    top, bottom = _column(smc, "fvg_top"), _column(smc, "fvg_bottom")
    if fvg is not None and top is not None and bottom is not None:
        zones = fair_value_gap_zones(fvg, top, bottom, highs, lows)
        _draw_zones(ax, zones, right_edge, "fvg", theme.bull_zone, theme.bear_zone, theme.zone_alpha)
    ob, ob_top, ob_bottom = _column(smc, "ob"), _column(smc, "ob_top"), _column(smc, "ob_bottom")
    if ob is not None and ob_top is not None and ob_bottom is not None:
        zones = order_block_zones(ob, ob_top, ob_bottom, closes)
        _draw_zones(ax, zones, right_edge, "ob", theme.bull_ob, theme.bear_ob, theme.zone_alpha * 1.4)
    _draw_swings(ax, smc, highs, lows, theme)
    _draw_breaks(ax, smc, highs, lows, theme)


def _draw_swings(ax: Axes, smc: pl.DataFrame, highs: np.ndarray, lows: np.ndarray, theme: Theme) -> None:
    span = float(np.nanmax(highs) - np.nanmin(lows)) or 1.0
    for gid, flag_col, level_col, prices, marker, offset in (
        ("swing_high", "swing_high", "swing_high_level", highs, "v", 0.012),
        ("swing_low", "swing_low", "swing_low_level", lows, "^", -0.012),
    ):
        flags, levels = _column(smc, flag_col), _column(smc, level_col)
        if flags is None or levels is None:
            continue
        pivots = swing_pivots(flags, levels, prices)
        if not pivots:
            continue
        xs = [p[0] for p in pivots]
        ys = [p[1] + offset * span for p in pivots]
        ax.scatter(xs, ys, marker=marker, s=36, color=theme.warn, zorder=4, gid=gid, linewidths=0)


def _draw_breaks(ax: Axes, smc: pl.DataFrame, highs: np.ndarray, lows: np.ndarray, theme: Theme) -> None:
    """BOS/CHoCH above a bullish break's high, below a bearish one's low; `place_break_labels` then
    moves any that would cover another label."""
    bos, choch = _column(smc, "bos"), _column(smc, "choch")
    n = highs.size
    bos_f = as_flags(bos) if bos is not None else np.zeros(n, np.int8)
    choch_f = as_flags(choch) if choch is not None else np.zeros(n, np.int8)
    for i in np.flatnonzero((bos_f != 0) | (choch_f != 0)):
        is_choch = choch_f[i] != 0
        direction = int(choch_f[i] if is_choch else bos_f[i])
        bullish = direction > 0
        base = highs[i] if bullish else lows[i]
        if not np.isfinite(base):
            continue
        ax.annotate(
            "CHoCH" if is_choch else "BOS",
            (float(i), float(base)),
            xytext=(0, BREAK_OFFSET_PT if bullish else -BREAK_OFFSET_PT),
            textcoords="offset points",
            ha="center",
            va="bottom" if bullish else "top",
            fontsize=theme.note_size,
            fontweight="bold",
            color=theme.up if bullish else theme.down,
            zorder=5,
            gid="choch" if is_choch else "bos",
        )


def place_break_labels(ax: Axes) -> None:
    """Move BOS/CHoCH labels off each other and off the position tags (up for a bullish break, down
    for a bearish one), then widen the price range just enough to keep every label inside the chart."""
    labels = [t for t in ax.texts if t.get_gid() in ("bos", "choch")]
    if not labels:
        return
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    tags = [_box(t.get_window_extent(renderer)) for t in ax.texts if t.get_gid() == "position_tag"]
    directions = [1 if t.get_verticalalignment() == "bottom" else -1 for t in labels]
    points_per_px = 72.0 / ax.figure.dpi
    left, right = ax.get_window_extent(renderer).x0, ax.get_window_extent(renderer).x1
    boxes = []
    for label in labels:  # a label on the first or last bars is pulled inside the chart sideways
        box = _box(label.get_window_extent(renderer))
        dx = max(0.0, left - box.x0) - max(0.0, box.x1 - right)
        x, y = label.xyann  # type: ignore[attr-defined]
        label.xyann = (x + dx * points_per_px, y)  # type: ignore[attr-defined]
        boxes.append(Box(box.x0 + dx, box.x1 + dx, box.y0, box.y1))
    shifts = push_clear(boxes, directions, tags)
    for label, dy in zip(labels, shifts, strict=True):
        x, y = label.xyann  # type: ignore[attr-defined]
        label.xyann = (x, y + dy * points_per_px)  # type: ignore[attr-defined]
    for _ in range(3):  # a wider range moves the candles, not the labels' distance to them: settle it
        frame = ax.get_window_extent(renderer)
        extents = [t.get_window_extent(renderer) for t in labels]
        over = max(b.y1 for b in extents) - frame.y1 + GAP_PX
        under = frame.y0 - min(b.y0 for b in extents) + GAP_PX
        if over <= 0 and under <= 0:
            return
        lo, hi = ax.get_ylim()
        per_px = (hi - lo) / max(frame.height, 1.0)
        ax.set_ylim(lo - max(under, 0.0) * per_px * 1.1, hi + max(over, 0.0) * per_px * 1.1)


def _box(extent: Any) -> Box:
    return Box(float(extent.x0), float(extent.x1), float(extent.y0), float(extent.y1))
