"""Ticks and bars for tests and measurements: M1 bars built from ticks as MT5 builds them, coarser bars
from finer ones, a synthetic 1-second gold market with its M1 and M15 bars (`synthetic_truth`, the
truth the intrabar paths are scored against), and UTC tick times written back in server time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from trading.timezones import DEFAULT_SERVER_TZ, ServerClock


def ticks_to_m1(ticks: pl.DataFrame) -> pl.DataFrame:
    """M1 bid bars (with the mean spread in points) from ticks: how MT5 builds its bars."""
    return (
        ticks.with_columns(pl.col("time_msc").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("t"))
        .group_by_dynamic("t", every="1m")
        .agg(
            open=pl.col("bid").first(),
            high=pl.col("bid").max(),
            low=pl.col("bid").min(),
            close=pl.col("bid").last(),
            tick_volume=pl.len().cast(pl.Int64),
            spread=((pl.col("ask") - pl.col("bid")).mean() * 100).round(0).cast(pl.Int32),
            real_volume=pl.lit(0, dtype=pl.Int64),
        )
        .rename({"t": "time"})
        .with_columns(pl.col("time").dt.cast_time_unit("us"))
    )


def resample_bars(m1: pl.DataFrame, minutes: int = 15) -> pl.DataFrame:
    """Coarser bars from finer ones (the M15 bar of its M1 bars)."""
    return m1.group_by_dynamic("time", every=f"{minutes}m").agg(
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("tick_volume").sum(),
        pl.col("spread").first(),
        pl.col("real_volume").sum(),
    )


@dataclass(frozen=True, slots=True)
class SyntheticTruth:
    """A fine synthetic market: ticks every `tick_seconds`, and its M1 and M15 bars."""

    ticks: pl.DataFrame
    m1: pl.DataFrame
    m15: pl.DataFrame


def synthetic_truth(
    n_bars: int,
    seed: int = 0,
    *,
    tick_seconds: int = 1,
    start: datetime | None = None,
    vol_per_second: float = 0.06,
    spread_points: int = 20,
) -> SyntheticTruth:
    """A random-walk gold market at `tick_seconds` resolution (fat-ish tails, volatility clustering),
    aggregated to M1 and M15 exactly as a broker would build them from its ticks."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2024, 1, 2, tzinfo=UTC)
    n = n_bars * 900 // tick_seconds
    vol = vol_per_second * np.sqrt(tick_seconds) * np.exp(np.cumsum(rng.normal(0, 0.002, n)).clip(-1.5, 1.5))
    steps = rng.standard_t(4, n) / np.sqrt(2.0) * vol
    bid = np.round(2000.0 + np.cumsum(steps), 2)
    spread = np.round(rng.integers(spread_points - 5, spread_points + 6, n) * 0.01, 2)
    ms = int(start.timestamp() * 1000) + np.arange(n, dtype=np.int64) * tick_seconds * 1000
    ticks = pl.DataFrame({"time_msc": ms, "bid": bid, "ask": np.round(bid + spread, 2)})
    m1 = ticks_to_m1(ticks)
    m15 = resample_bars(m1, 15)
    return SyntheticTruth(ticks, m1, m15)


def as_server_ticks(ticks: pl.DataFrame, server_tz: str | ServerClock = DEFAULT_SERVER_TZ) -> pl.DataFrame:
    """UTC tick times back to broker server time (what a file exported from MT5 holds)."""
    clock = server_tz if isinstance(server_tz, ServerClock) else ServerClock.parse(server_tz)
    utc = (
        pl.Series(ticks["time_msc"].to_numpy(), dtype=pl.Int64)
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
    )
    if clock.kind == "fixed":
        wall = utc.dt.replace_time_zone(None).dt.offset_by(f"{round(clock.hours * 60)}m")
    else:
        zone = "America/New_York" if clock.kind == "ny" else clock.zone
        wall = utc.dt.convert_time_zone(zone).dt.replace_time_zone(None)
        if clock.kind == "ny":
            wall = wall.dt.offset_by(f"{round(clock.hours * 60)}m")
    return ticks.with_columns(pl.Series("time_msc", wall.dt.epoch("ms").to_numpy()))
