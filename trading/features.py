"""Per-bar features for XAUUSD M15: the bar frame plus momentum, volatility, trend, price-action,
volume, lag and time/session columns (analysis-and-models.md §1).

`compute_features(bars)` returns the input bars with `FEATURE_COLUMNS` appended, in that order.
Every value at row t depends only on rows <= t. Float columns are NaN (not null) during their
warm-up, as in TA-Lib and as XGBoost reads missing values; rows from `WARMUP_BARS` on are complete.
Flag columns are Int8 0/1 and never missing. Input must be validated bars (trading.bars); extra
columns are kept.

Conventions (where this module departs from the original bot, the issue decides):
- RSI, ATR, MACD, Bollinger bands and the EMAs are TA-Lib's (SMA-seeded EMAs, Wilder smoothing seeded
  with a simple average, population deviation for the bands), so `rsi_14` starts at row 14, `atr_14`
  at 14, `ema_9` at 8, `ema_21` at 20, `bb_*` at 19 and `macd*` at 33.
- `rsi`, `atr` and `macd_histogram` are the signal model's names (§1 list of 37) for `rsi_14`, `atr_14`
  and `macd_hist`; they hold the same values.
- Other rolling statistics are trailing windows with sample deviation (ddof=1), as in the spec.
- `hour`, `weekday` (ISO, 1 = Monday) and the session flags use the bar's open time in WIB
  (Asia/Jakarta, UTC+7, no DST), with the WIB session table of entry-exit-risk.md §1.1:
  Sydney 06:00–13:00, Tokyo 07:00–16:00, London 15:00–23:59, New York 20:00–23:59 (the same window
  as golden time, decision 9) and the blocked dead zone + rollover 00:00–05:59.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trading import indicators as ind

_REQUIRED = ("time", "open", "high", "low", "close", "tick_volume", "spread")
_WIB_OFFSET_US = 7 * 3600 * 1_000_000
_US_PER_MINUTE = 60 * 1_000_000
_US_PER_DAY = 1440 * _US_PER_MINUTE

# WIB minute-of-day windows, inclusive both ends (entry-exit-risk.md §1.1). New York equals golden
# time (20:00-23:59) in that table; the dead zone is the blocked 00:00-05:59 (dead zone + rollover).
SESSION_WINDOWS_WIB: dict[str, tuple[int, int]] = {
    "sydney_session": (6 * 60, 13 * 60),
    "tokyo_session": (7 * 60, 16 * 60),
    "london_session": (15 * 60, 24 * 60 - 1),
    "ny_session": (20 * 60, 24 * 60 - 1),
    "dead_zone": (0, 6 * 60 - 1),
}

# name -> polars dtype; order is the public column order
_FEATURES: dict[str, type[pl.DataType]] = {
    # momentum
    "rsi_14": pl.Float64,
    "rsi": pl.Float64,
    "macd": pl.Float64,
    "macd_signal": pl.Float64,
    "macd_hist": pl.Float64,
    "macd_histogram": pl.Float64,
    "returns_1": pl.Float64,
    "returns_5": pl.Float64,
    "returns_20": pl.Float64,
    "log_returns": pl.Float64,
    # volatility
    "atr_14": pl.Float64,
    "atr": pl.Float64,
    "atr_percent": pl.Float64,
    "bb_upper": pl.Float64,
    "bb_middle": pl.Float64,
    "bb_lower": pl.Float64,
    "bb_width": pl.Float64,
    "bb_percent_b": pl.Float64,
    "volatility_20": pl.Float64,
    "normalized_range": pl.Float64,
    "avg_normalized_range": pl.Float64,
    # trend
    "ema_9": pl.Float64,
    "ema_21": pl.Float64,
    "ema_cross_bull": pl.Int8,
    "ema_cross_bear": pl.Int8,
    "dist_from_sma_20": pl.Float64,
    # price action
    "price_position": pl.Float64,
    "higher_high": pl.Int8,
    "lower_low": pl.Int8,
    "hh_count_5": pl.Float64,
    "ll_count_5": pl.Float64,
    # volume and order flow (volume = MT5 tick_volume)
    "volume_sma": pl.Float64,
    "volume_ratio": pl.Float64,
    "volume_increasing": pl.Int8,
    "high_volume": pl.Int8,
    "buy_volume": pl.Float64,
    "sell_volume": pl.Float64,
    "ofi_pseudo": pl.Float64,
    "ofi_trend": pl.Float64,
    "ofi_std": pl.Float64,
    "ofi_divergence": pl.Float64,
    "volume_momentum": pl.Float64,
    "toxicity": pl.Float64,
    # lags
    "close_lag_1": pl.Float64,
    "close_lag_2": pl.Float64,
    "close_lag_3": pl.Float64,
    "close_lag_5": pl.Float64,
    # time and sessions (WIB)
    "hour": pl.Int8,
    "weekday": pl.Int8,
    "sydney_session": pl.Int8,
    "tokyo_session": pl.Int8,
    "london_session": pl.Int8,
    "ny_session": pl.Int8,
    "dead_zone": pl.Int8,
}

FEATURE_COLUMNS: tuple[str, ...] = tuple(_FEATURES)
# Rows [0, WARMUP_BARS) may hold warm-up NaN (MACD is the last to start, at row 33); from there on every
# float feature is defined unless the bar itself is degenerate (high == low, zero volume average).
WARMUP_BARS = 33
# The columns whose row t depends on every row before it (seeded recursions: EMAs, Wilder smoothing);
# every other column is a function of the last `FEATURE_LOOKBACK` rows (trading.feature_step relies on it).
RECURSIVE_COLUMNS: tuple[str, ...] = (
    "rsi_14",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "macd_histogram",
    "atr_14",
    "atr",
    "atr_percent",
    "ema_9",
    "ema_21",
    "ema_cross_bull",
    "ema_cross_bear",
)
FEATURE_LOOKBACK = 22  # returns_20 and volume_momentum read 21 rows back at most
FEATURE_DTYPES: dict[str, type[pl.DataType]] = dict(_FEATURES)
_NP_DTYPES = {name: (np.int8 if dtype is pl.Int8 else np.float64) for name, dtype in _FEATURES.items()}


def compute_features(bars: pl.DataFrame) -> pl.DataFrame:
    """The bars (BAR_SCHEMA, UTC time) with FEATURE_COLUMNS appended. Never raises on short frames."""
    _check_input(bars)
    time_us = bars["time"].dt.epoch("us").to_numpy()
    o, h, lo, c = (
        bars[k].to_numpy().astype(np.float64, copy=False) for k in ("open", "high", "low", "close")
    )
    vol = bars["tick_volume"].to_numpy().astype(np.float64)
    spread = bars["spread"].to_numpy().astype(np.float64)
    out = feature_arrays(o, h, lo, c, vol, spread, time_us)
    series = [pl.Series(name, out[name].astype(_NP_DTYPES[name], copy=False)) for name in FEATURE_COLUMNS]
    return bars.hstack(series)


def feature_arrays(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    vol: np.ndarray,
    spread: np.ndarray,
    time_us: np.ndarray,
) -> dict[str, np.ndarray]:
    """FEATURE_COLUMNS as numpy arrays (float64, flags int8 after the cast `compute_features` does) from
    float64 bar columns and the bar open times in epoch microseconds."""
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        _momentum(out, c)
        _volatility(out, h, lo, c)
        _trend(out, c)
        _price_action(out, h, lo, c)
        _volume(out, o, c, vol, spread)
        _lags(out, c)
        _time_and_sessions(out, time_us)
    return out


def _check_input(bars: pl.DataFrame) -> None:
    if not isinstance(bars, pl.DataFrame):
        raise TypeError(f"compute_features needs a polars DataFrame, got {type(bars).__name__}")
    schema = bars.schema
    missing = [c for c in _REQUIRED if c not in schema]
    if missing:
        raise ValueError(f"bar frame is missing column(s): {', '.join(missing)}")
    tdt = schema["time"]
    if not isinstance(tdt, pl.Datetime) or tdt.time_zone is None:
        raise ValueError(f"column 'time' must be a UTC-aware Datetime, got {tdt}")
    clash = [c for c in FEATURE_COLUMNS if c in schema]
    if clash:
        raise ValueError(f"bar frame already has feature column(s): {', '.join(clash[:5])}")


def _int8(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.int8)


def _finite_or_zero(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


def _momentum(out: dict[str, np.ndarray], c: np.ndarray) -> None:
    rsi = ind.rsi(c, 14)
    line, signal, hist = ind.macd(c, 12, 26, 9)
    out["rsi_14"] = out["rsi"] = rsi
    out["macd"], out["macd_signal"] = line, signal
    out["macd_hist"] = out["macd_histogram"] = hist
    for k in (1, 5, 20):
        out[f"returns_{k}"] = c / ind.shift(c, k) - 1.0
    out["log_returns"] = np.log(c / ind.shift(c, 1))


def _volatility(out: dict[str, np.ndarray], h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
    atr = ind.atr(h, lo, c, 14)
    out["atr_14"] = out["atr"] = atr
    out["atr_percent"] = atr / c * 100.0
    upper, middle, lower = ind.bollinger(c, 20, 2.0, 2.0)
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = upper, middle, lower
    out["bb_width"] = (upper - lower) / middle
    out["bb_percent_b"] = (c - lower) / (upper - lower)
    out["volatility_20"] = ind.rolling_std(out["log_returns"], 20, 1)
    nrange = (h - lo) / c
    out["normalized_range"] = nrange
    out["avg_normalized_range"] = ind.rolling_mean(nrange, 14)


def _trend(out: dict[str, np.ndarray], c: np.ndarray) -> None:
    fast, slow = ind.ema(c, 9), ind.ema(c, 21)
    out["ema_9"], out["ema_21"] = fast, slow
    defined = ~(np.isnan(fast) | np.isnan(slow))
    above = fast > slow
    prev_defined = np.zeros_like(defined)
    prev_defined[1:] = defined[:-1]
    prev_above = np.zeros_like(above)
    prev_above[1:] = above[:-1]
    # a cross needs both bars defined, so the end of the warm-up is never a cross
    both = defined & prev_defined
    out["ema_cross_bull"] = _int8(both & above & ~prev_above)
    out["ema_cross_bear"] = _int8(both & ~above & prev_above)
    out["dist_from_sma_20"] = c / out["bb_middle"] - 1.0


def _price_action(out: dict[str, np.ndarray], h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
    out["price_position"] = np.where(h > lo, (c - lo) / (h - lo), np.nan)
    hh = h > ind.shift(h, 1)  # NaN compares False on the first bar
    ll = lo < ind.shift(lo, 1)
    out["higher_high"], out["lower_low"] = _int8(hh), _int8(ll)
    out["hh_count_5"] = ind.rolling_sum(hh.astype(np.float64), 5)
    out["ll_count_5"] = ind.rolling_sum(ll.astype(np.float64), 5)


def _volume(
    out: dict[str, np.ndarray], o: np.ndarray, c: np.ndarray, vol: np.ndarray, spread: np.ndarray
) -> None:
    vsma = ind.rolling_mean(vol, 20)
    ratio = vol / vsma
    out["volume_sma"], out["volume_ratio"] = vsma, ratio
    out["volume_increasing"] = _int8(vol > ind.shift(vol, 1))
    out["high_volume"] = _int8(ratio > 1.5)
    buy = np.where(c > o, vol, 0.0)
    sell = np.where(c < o, vol, 0.0)
    out["buy_volume"], out["sell_volume"] = buy, sell
    ofi = _finite_or_zero((buy - sell) / (buy + sell + 1e-9))
    trend = ind.rolling_mean(ofi, 20)
    divergence = _finite_or_zero(ofi - trend)
    momentum = _finite_or_zero(ratio / ind.shift(ratio, 1) - 1.0)
    out["ofi_pseudo"], out["ofi_trend"] = ofi, trend
    out["ofi_std"] = ind.rolling_std(ofi, 20, 1)
    out["ofi_divergence"], out["volume_momentum"] = divergence, momentum
    spread_term = np.abs(spread / ind.rolling_mean(spread, 20) - 1.0)
    out["toxicity"] = _finite_or_zero(np.abs(momentum) + 2.0 * np.abs(divergence) + spread_term)


def _lags(out: dict[str, np.ndarray], c: np.ndarray) -> None:
    for k in (1, 2, 3, 5):
        out[f"close_lag_{k}"] = ind.shift(c, k)


def _time_and_sessions(out: dict[str, np.ndarray], time_us: np.ndarray) -> None:
    wib = time_us + _WIB_OFFSET_US
    minute = (wib // _US_PER_MINUTE) % 1440
    out["hour"] = minute // 60
    out["weekday"] = (wib // _US_PER_DAY + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
    for name, (start, end) in SESSION_WINDOWS_WIB.items():
        out[name] = _int8((minute >= start) & (minute <= end))
