"""Trades on the candlestick chart: open positions' entry, SL and TP lines with price tags spread
apart, and closed trades' entry -> exit marks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

from charts.style import Theme


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


def draw_positions(ax: Axes, positions: Sequence[ChartPosition], n: int, theme: Theme) -> None:
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


def draw_trades(ax: Axes, trades: Sequence[ChartTrade], times: pl.Series, theme: Theme) -> None:
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
