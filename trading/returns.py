"""Daily returns and the Sharpe ratio: the one definition every report, search and statistic uses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

TRADING_DAYS = 252


def daily_returns(times: Sequence[datetime], equity: np.ndarray) -> np.ndarray:
    """Close-to-close returns of the equity's last value per UTC day."""
    e = np.asarray(equity, dtype=float)
    if len(times) < 2 or e.size < 2:
        return np.zeros(0)
    days = pl.DataFrame({"t": list(times), "e": e}).group_by_dynamic("t", every="1d").agg(pl.col("e").last())
    last = days["e"].to_numpy()
    return np.diff(last) / last[:-1] if last.size > 1 else np.zeros(0)


def sharpe(returns: np.ndarray) -> float:
    """Per observation: mean over sample standard deviation; 0 for a flat or too short series."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return 0.0
    sd = float(r.std(ddof=1))
    return float(r.mean() / sd) if sd > 0 else 0.0


def annual_sharpe(returns: np.ndarray, periods: int = TRADING_DAYS) -> float:
    """`sharpe` of daily returns scaled to a year of `periods` trading days."""
    return sharpe(returns) * math.sqrt(periods)


def annual_sortino(returns: np.ndarray, periods: int = TRADING_DAYS) -> float:
    """Mean over the root mean square of the losing days, scaled to a year; 0 without a losing day."""
    r = np.asarray(returns, dtype=float)
    downside = r[r < 0]
    dsd = float(np.sqrt(np.mean(downside**2))) if downside.size else 0.0
    return float(r.mean() / dsd * math.sqrt(periods)) if dsd > 0 else 0.0
