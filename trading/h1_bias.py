"""The H1 bias of each M15 bar: the CODE's 5-indicator score of the last closed H1 bar (+1 / -1 / 0)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from trading import features

H1_WEIGHTS = (0.25, 0.20, 0.20, 0.20, 0.15)
_M15 = timedelta(minutes=15)


def h1_bias_series(m15: pl.DataFrame) -> np.ndarray:
    """Per M15 row, the CODE's 5-indicator H1 score from the last *closed* H1 bar: +1 / -1 / 0."""
    out = np.zeros(m15.height, dtype=np.int8)
    if m15.height == 0:
        return out
    h1 = (
        m15.sort("time")
        .group_by_dynamic("time", every="1h", closed="left", label="left")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("tick_volume").sum(),
            pl.col("spread").last(),
            pl.col("real_volume").sum(),
        )
    )
    f = features.compute_features(h1)
    close, e21, e9 = f["close"].to_numpy(), f["ema_21"].to_numpy(), f["ema_9"].to_numpy()
    rsi, hist = f["rsi_14"].to_numpy(), f["macd_hist"].to_numpy()
    csum = np.cumsum(np.nan_to_num(np.sign(np.diff(close, prepend=np.nan))))
    up_count = csum - np.concatenate([np.zeros(min(5, len(csum))), csum[:-5]])  # last 5 candle directions
    votes = np.vstack(
        [
            np.sign(close - e21),
            np.sign(e9 - e21),
            np.where(rsi > 55, 1.0, np.where(rsi < 45, -1.0, 0.0)),
            np.sign(hist),
            np.sign(up_count),
        ]
    )
    score = np.nansum(votes * np.asarray(H1_WEIGHTS)[:, None], axis=0)
    score[np.isnan(e21) | np.isnan(hist)] = 0.0
    bias = np.where(score >= 0.3, 1, np.where(score <= -0.3, -1, 0)).astype(np.int8)
    # an M15 bar at t sees the H1 bar that closed at or before t + 15 min
    h1_close = (h1["time"] + timedelta(hours=1)).to_numpy()
    m15_close = (m15["time"] + _M15).to_numpy()
    idx = np.searchsorted(h1_close, m15_close, side="right") - 1
    ok = idx >= 0
    out[ok] = bias[idx[ok]]
    return out
