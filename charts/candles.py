"""Candlestick chart with SMC overlays, open positions and regime shading, as PNG bytes.

Bars are drawn on an integer axis (one slot per bar, so weekend gaps take no room) labelled with
WIB times. The SMC frame is aligned row-for-row with the bars, or joined on `time` when it has one.
Every overlay artist carries a gid ("fvg", "ob", "bos", "choch", "swing_high", "swing_low",
"position_entry", "position_sl", "position_tp", "position_tag", "regime", "regime_label", "closed_entry",
"closed_exit", "legend") so tests can count what was drawn. A legend names the colours actually drawn (FVG,
order blocks, the regimes shaded, closed trades); bars of unknown regime are not shaded, and the regime
label ("regime: low", or "regime unknown") sits on the title line. Price tags of positions whose levels
are close are spread apart, and BOS/CHoCH labels are moved off each other and off the tags, so no label
covers another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text
from matplotlib.transforms import blended_transform_factory

from charts.layout import GAP_PX, Box, push_clear
from charts.style import DARK, Theme, new_figure, no_data_figure, render_png, set_title, style_axes
from charts.zones import Zone, as_flags, fair_value_gap_zones, order_block_zones, runs, swing_pivots

OHLC = ("open", "high", "low", "close")
REGIME_NAMES = {0: "low", 1: "medium", 2: "high"}
TZ_ABBREVIATIONS = {"Asia/Jakarta": "WIB", "UTC": "UTC"}
BREAK_OFFSET_PT = 9.0  # a BOS/CHoCH label's distance from its candle, clear of the swing marker


@dataclass(frozen=True, slots=True)
class ChartPosition:
    """An open position to draw: entry line, and SL/TP lines when set (None, 0 or NaN = not set)."""

    side: str
    entry: float
    sl: float | None = None
    tp: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        side = str(self.side).upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"ChartPosition side must be 'BUY' or 'SELL', got {self.side!r}")
        if not np.isfinite(self.entry):
            raise ValueError(f"ChartPosition entry must be a finite price, got {self.entry!r}")
        object.__setattr__(self, "side", side)

    @staticmethod
    def _level(value: float | None) -> float | None:
        return float(value) if value is not None and np.isfinite(value) and value != 0 else None

    @property
    def stop(self) -> float | None:
        return self._level(self.sl)

    @property
    def target(self) -> float | None:
        return self._level(self.tp)


@dataclass(frozen=True, slots=True)
class ChartTrade:
    """A closed trade to mark: entry and exit (aware or naive-UTC times), side and result."""

    side: str
    open_time: datetime
    open_price: float
    close_time: datetime
    close_price: float
    profit: float
    label: str = ""


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
    aligned = _align_smc(bars, smc)

    fig = new_figure(theme)
    ax = fig.add_axes((0.045, 0.16, 0.865, 0.75))  # room below the time labels for the legend row
    style_axes(ax, theme)
    ax.yaxis.tick_right()

    right_pad = max(6.0, n * 0.15)
    ax.set_xlim(-1.0, n - 1 + right_pad)
    levels = [lvl for p in positions for lvl in (p.entry, p.stop, p.target) if lvl is not None]
    ax.set_ylim(*_price_limits(lows, highs, levels))

    shaded = _draw_regimes(ax, regimes, n, theme) if regimes is not None else set()
    _draw_candles(ax, opens, highs, lows, closes, theme)
    if aligned is not None:
        _draw_smc(ax, aligned, highs, lows, closes, theme)
    _draw_trades(ax, trades, bars["time"], theme)
    _draw_positions(ax, positions, n, theme)
    _draw_last_price(ax, closes, n, theme)
    _draw_legend(ax, theme, shaded)
    _set_time_ticks(ax, labels, n)
    tz_name = TZ_ABBREVIATIONS.get(tz, tz)
    last = closes[np.flatnonzero(np.isfinite(closes))[-1]]
    shown = set_title(fig, ax, title, f"{last:.2f} · {labels[-1].replace(chr(10), ' ')} {tz_name}", theme)
    if regimes is not None or regime_now is not None:
        _draw_regime_label(ax, shown, regime_name(regimes, regime_now), theme)
    _place_break_labels(ax)
    return fig


def regime_name(regimes: pl.Series | Sequence[int | None] | None, regime_now: str | None) -> str | None:
    """The regime the chart names: the decision's (as /status shows it), else the last bar's; None: unknown."""
    if regime_now is not None:
        name = str(regime_now).strip().lower()
        return None if name in ("", "unknown", "none") else name
    if regimes is None:
        return None
    values = _regime_values(regimes if isinstance(regimes, pl.Series) else pl.Series(list(regimes)))
    return REGIME_NAMES.get(int(values[-1])) if values.size else None


def _wib_labels(times: pl.Series, tz: str) -> list[str]:
    if not isinstance(times.dtype, pl.Datetime):
        raise ValueError(f"bars 'time' must be a Datetime column, got {times.dtype}")
    if times.dtype.time_zone is None:
        times = times.dt.replace_time_zone("UTC")
    return times.dt.convert_time_zone(tz).dt.strftime("%H:%M\n%d %b").fill_null("").to_list()


def _align_smc(bars: pl.DataFrame, smc: pl.DataFrame | None) -> pl.DataFrame | None:
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


def _draw_smc(
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
    """BOS/CHoCH above a bullish break's high, below a bearish one's low; `_place_break_labels` then
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


def _place_break_labels(ax: Axes) -> None:
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


def _regime_values(regimes: pl.Series) -> np.ndarray:
    """Regime labels as ints; null, NaN and anything outside 0-2 are -1 (unknown)."""
    values = regimes.cast(pl.Float64, strict=False).fill_null(-1).to_numpy()
    values = np.nan_to_num(values, nan=-1).astype(int)
    return np.where(np.isin(values, list(REGIME_NAMES)), values, -1)


def _draw_regimes(ax: Axes, regimes: pl.Series | Sequence[int | None], n: int, theme: Theme) -> set[int]:
    """Shade each run of a known regime; bars of unknown regime (null, NaN, -1) stay unshaded.
    Returns the regimes shaded, for the legend."""
    if not isinstance(regimes, pl.Series):
        regimes = pl.Series(list(regimes))
    if regimes.len() != n:
        raise ValueError(f"regimes has {regimes.len()} values but bars has {n}; give one per bar")
    colors = _regime_colors(theme)
    shaded: set[int] = set()
    for start, end, value in runs(_regime_values(regimes)):
        if value in colors:
            ax.axvspan(
                start - 0.5,
                end + 0.5,
                color=colors[value],
                alpha=theme.regime_alpha,
                lw=0,
                zorder=0,
                gid="regime",
            )
            shaded.add(value)
    return shaded


def _regime_colors(theme: Theme) -> dict[int, str]:
    return {0: theme.regime_low, 1: theme.regime_medium, 2: theme.regime_high}


def _draw_regime_label(ax: Axes, title: Text | None, name: str | None, theme: Theme) -> None:
    """ "regime: low" in the regime's colour (or "regime unknown"), on the title line right after the
    title: outside the plot, so it never covers a candle or a BOS/CHoCH label."""
    by_name = {v: k for k, v in REGIME_NAMES.items()}
    color = _regime_colors(theme).get(by_name.get(name or "", -1), theme.muted)
    text = f"regime: {name}" if name else "regime unknown"
    common: dict[str, Any] = {
        "fontsize": theme.label_size,
        "color": color,
        "fontweight": "bold",
        "gid": "regime_label",
    }
    if title is not None:
        ax.annotate(
            text,
            (1.0, 0.5),
            xycoords=title,
            xytext=(14, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            **common,
        )
    else:
        ax.text(0.0, 1.02, text, transform=ax.transAxes, ha="left", va="bottom", **common)


def _draw_positions(ax: Axes, positions: Sequence[ChartPosition], n: int, theme: Theme) -> None:
    label_at = blended_transform_factory(ax.transAxes, ax.transData)
    tags: list[tuple[float, str, str]] = []
    for pos in positions:
        side_color = theme.up if pos.side == "BUY" else theme.down
        name = pos.label or pos.side
        lines: list[tuple[str, float | None, str, str, str]] = [
            ("position_entry", pos.entry, side_color, "-", f"{name} {pos.entry:.2f}"),
            ("position_sl", pos.stop, theme.stop, "--", f"SL {pos.stop:.2f}" if pos.stop else ""),
            ("position_tp", pos.target, theme.target, "--", f"TP {pos.target:.2f}" if pos.target else ""),
        ]
        for gid, level, color, style, text in lines:
            if level is None:
                continue
            ax.axhline(level, color=color, linestyle=style, linewidth=1.4, alpha=0.9, zorder=4, gid=gid)
            tags.append((level, text, color))
    lo, hi = ax.get_ylim()
    gap = (hi - lo) * 0.045  # about one tag's height on the default figure
    for y, (_, text, color) in zip(spread_labels([t[0] for t in tags], gap), tags, strict=True):
        _tag(ax, label_at, y, text, color, theme)


def spread_labels(levels: Sequence[float], gap: float) -> list[float]:
    """Label heights for price levels, in the levels' order: each at its level unless that is within
    `gap` of the one below, then pushed up just enough (so two positions' tags never overlap)."""
    order = sorted(range(len(levels)), key=lambda i: levels[i])
    placed = list(levels)
    previous = None
    for i in order:
        y = levels[i] if previous is None else max(levels[i], previous + gap)
        placed[i] = y
        previous = y
    return placed


def _bar_index(times: pl.Series, when: datetime) -> float | None:
    """The bar slot holding `when` (aware or naive UTC), or None outside the chart."""
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    aware = isinstance(times.dtype, pl.Datetime) and times.dtype.time_zone is not None
    series = times if aware else times.dt.replace_time_zone("UTC")
    i = int(series.search_sorted(when, side="right")) - 1
    return float(i) if 0 <= i < series.len() else None


def _draw_trades(ax: Axes, trades: Sequence[ChartTrade], times: pl.Series, theme: Theme) -> None:
    """Closed trades: ▲/▼ at the entry, ✕ at the exit, a dotted line between, green for a win, red for a loss."""
    for t in trades:
        x0, x1 = _bar_index(times, t.open_time), _bar_index(times, t.close_time)
        if x1 is None:
            continue
        color = theme.up if t.profit >= 0 else theme.down
        if x0 is not None:
            ax.plot(
                [x0, x1], [t.open_price, t.close_price], color=color, linestyle=":", linewidth=1.2, zorder=4
            )
            marker = "^" if str(t.side).upper() == "BUY" else "v"
            ax.scatter(
                [x0],
                [t.open_price],
                marker=marker,
                s=42,
                color=color,
                zorder=5,
                gid="closed_entry",
                edgecolors=theme.text,
                linewidths=0.5,
            )
        ax.scatter(
            [x1],
            [t.close_price],
            marker="X",
            s=42,
            color=color,
            zorder=5,
            gid="closed_exit",
            edgecolors=theme.text,
            linewidths=0.5,
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
    for value, color in _regime_colors(theme).items():
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


def _tag(ax: Axes, transform: Any, y: float, text: str, color: str, theme: Theme) -> None:
    ax.text(
        0.995,
        y,
        text,
        transform=transform,
        ha="right",
        va="bottom",
        fontsize=theme.note_size,
        color=color,
        zorder=6,
        clip_on=True,
        bbox={"boxstyle": "round,pad=0.2", "facecolor": theme.panel, "edgecolor": color, "alpha": 0.85},
        gid="position_tag",
    )


def _draw_last_price(ax: Axes, closes: np.ndarray, n: int, theme: Theme) -> None:
    last = float(closes[np.flatnonzero(np.isfinite(closes))[-1]])
    ax.axhline(last, color=theme.muted, linestyle=":", linewidth=1.0, zorder=2)


def _set_time_ticks(ax: Axes, labels: list[str], n: int) -> None:
    step = max(1, int(np.ceil(n / 6)))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[i] for i in ticks])
