"""Volatility-regime shading behind the candles, and the regime label on the title line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.text import Text

from charts.style import Theme
from charts.zones import runs

REGIME_NAMES = {0: "low", 1: "medium", 2: "high"}


def regime_name(regimes: pl.Series | Sequence[int | None] | None, regime_now: str | None) -> str | None:
    """The regime the chart names: the decision's (as /status shows it), else the last bar's; None: unknown."""
    if regime_now is not None:
        name = str(regime_now).strip().lower()
        return None if name in ("", "unknown", "none") else name
    if regimes is None:
        return None
    values = _regime_values(regimes if isinstance(regimes, pl.Series) else pl.Series(list(regimes)))
    return REGIME_NAMES.get(int(values[-1])) if values.size else None


def _regime_values(regimes: pl.Series) -> np.ndarray:
    """Regime labels as ints; null, NaN and anything outside 0-2 are -1 (unknown)."""
    values = regimes.cast(pl.Float64, strict=False).fill_null(-1).to_numpy()
    values = np.nan_to_num(values, nan=-1).astype(int)
    return np.where(np.isin(values, list(REGIME_NAMES)), values, -1)


def draw_regimes(ax: Axes, regimes: pl.Series | Sequence[int | None], n: int, theme: Theme) -> set[int]:
    """Shade each run of a known regime; bars of unknown regime (null, NaN, -1) stay unshaded.
    Returns the regimes shaded, for the legend."""
    if not isinstance(regimes, pl.Series):
        regimes = pl.Series(list(regimes))
    if regimes.len() != n:
        raise ValueError(f"regimes has {regimes.len()} values but bars has {n}; give one per bar")
    colors = regime_colors(theme)
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


def regime_colors(theme: Theme) -> dict[int, str]:
    return {0: theme.regime_low, 1: theme.regime_medium, 2: theme.regime_high}


def draw_regime_label(ax: Axes, title: Text | None, name: str | None, theme: Theme) -> None:
    """ "regime: low" in the regime's colour (or "regime unknown"), on the title line right after the
    title: outside the plot, so it never covers a candle or a BOS/CHoCH label."""
    by_name = {v: k for k, v in REGIME_NAMES.items()}
    color = regime_colors(theme).get(by_name.get(name or "", -1), theme.muted)
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
