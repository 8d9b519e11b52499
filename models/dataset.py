"""Meta-model dataset: one row per trade the engine would take, labelled by that trade's outcome.

Rows are the SMC setups that pass the bar-level entry gates (`models.setups`); the label is 1 when
the trade reaches its take-profit before its stop within the engine's time limit (triple barrier,
`models.labels`), else 0. Features are stationary: ratios, returns, distances in ATR, the SMC
state, the session clock, the filtered HMM regime, and the setup itself (side, stop distance in
ATR, R multiple, spread in R, side-aligned momentum). No raw price level is an input: a $2,000 and
a $4,000 market must look alike to the model. Every value at row t uses bars <= t only; the label
uses bars after t only, and the splits purge training rows whose trade was still open when the
next block starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.regime import RegimeModel
from models.setups import EngineSetups

BASE_FEATURES: tuple[str, ...] = (
    "rsi",
    "atr_percent",
    "bb_percent_b",
    "bb_width",
    "returns_1",
    "returns_5",
    "returns_20",
    "volatility_20",
    "normalized_range",
    "avg_normalized_range",
    "price_position",
    "dist_from_sma_20",
    "higher_high",
    "lower_low",
    "hh_count_5",
    "ll_count_5",
    "volume_ratio",
    "high_volume",
)
# price-unit indicators made scale-free by the bar's ATR
ATR_FEATURES: tuple[str, ...] = (
    "macd_atr",
    "macd_signal_atr",
    "macd_hist_atr",
    "ema9_dist_atr",
    "ema21_dist_atr",
    "ema_gap_atr",
)
SMC_FEATURES: tuple[str, ...] = (
    "swing_high",
    "swing_low",
    "fvg_signal",
    "ob",
    "bos",
    "choch",
    "market_structure",
)
TIME_FEATURES: tuple[str, ...] = ("hour", "weekday", "london_session", "ny_session")
BAR_FEATURES: tuple[str, ...] = (*BASE_FEATURES, *ATR_FEATURES, *SMC_FEATURES, *TIME_FEATURES, "regime")
SETUP_FEATURES: tuple[str, ...] = (
    "side",
    "risk_atr",
    "reward_atr",
    "risk_reward",
    "setup_confidence",
    "setup_fvg",
    "spread_r",
    "structure_with_side",
    "returns_5_with_side",
    "returns_20_with_side",
    "ema21_dist_with_side",
    "macd_hist_with_side",
    "rsi_with_side",
)
SIGNAL_FEATURES: tuple[str, ...] = (*BAR_FEATURES, *SETUP_FEATURES)
RAW_PRICE_COLUMNS = frozenset(
    {
        "open",
        "high",
        "low",
        "close",
        "ema_9",
        "ema_21",
        "atr",
        "macd",
        "macd_signal",
        "macd_histogram",
        "bb_upper",
        "bb_lower",
        "bb_middle",
    }
)
LABEL_DEFINITION = (
    "target = 1 when the setup's trade (entry at the setup bar's close, BUY at the ask) touches its take-profit "
    "before its stop within the engine's time limit; a bar touching both counts as the stop"
)
DEFAULT_GAP = 10  # setup rows between blocks, on top of purging rows whose trade overlaps the next block
_SOURCE = ("atr", "macd", "macd_signal", "macd_histogram", "ema_9", "ema_21")


def smc_feature_columns(bars: pl.DataFrame, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """The seven SMC inputs in the spec's encoding (swing_low is 0/-1, market_structure is the trend).
    `events`: `smc.analyze(bars)` when the caller has it already."""
    from trading import smc

    if events is None:
        events = smc.analyze(bars)
    return events.select(
        swing_high=pl.col("swing_high").cast(pl.Int8),
        swing_low=(-pl.col("swing_low").abs()).cast(pl.Int8),
        fvg_signal=pl.col("fvg").cast(pl.Int8),
        ob=pl.col("ob").cast(pl.Int8),
        bos=pl.col("bos").cast(pl.Int8),
        choch=pl.col("choch").cast(pl.Int8),
        market_structure=pl.col("trend").cast(pl.Int8),
    )


def base_feature_frame(
    bars: pl.DataFrame, *, feats: pl.DataFrame | None = None, events: pl.DataFrame | None = None
) -> pl.DataFrame:
    """time, close, atr and every bar feature except `regime` (which depends on a fitted HMM).
    `feats` / `events`: `compute_features(bars)` / `smc.analyze(bars)` when the caller has them already
    (the live analyzer does: the bar's work is then done once)."""
    from trading.features import compute_features

    if feats is None:
        feats = compute_features(bars)
    missing = [c for c in (*BASE_FEATURES, *TIME_FEATURES, *_SOURCE) if c not in feats.columns]
    if missing:
        raise ValueError(f"trading.features did not produce signal feature(s): {', '.join(missing)}")
    atr = pl.when(pl.col("atr") > 0).then(pl.col("atr")).otherwise(None)
    scaled = feats.select(
        "time",
        "close",
        "atr",
        *BASE_FEATURES,
        *TIME_FEATURES,
        macd_atr=pl.col("macd") / atr,
        macd_signal_atr=pl.col("macd_signal") / atr,
        macd_hist_atr=pl.col("macd_histogram") / atr,
        ema9_dist_atr=(pl.col("close") - pl.col("ema_9")) / atr,
        ema21_dist_atr=(pl.col("close") - pl.col("ema_21")) / atr,
        ema_gap_atr=(pl.col("ema_9") - pl.col("ema_21")) / atr,
    )
    return pl.concat([scaled, smc_feature_columns(bars, events)], how="horizontal").select(
        "time", "close", "atr", *BAR_FEATURES[:-1]
    )


def with_regime(frame: pl.DataFrame, labels: np.ndarray) -> pl.DataFrame:
    """Attach the filtered regime label; warm-up rows (-1) become null so training drops them."""
    if len(labels) != frame.height:
        raise ValueError(f"{len(labels)} regime labels for {frame.height} rows")
    series = pl.Series("regime", labels, pl.Int8)
    return frame.with_columns(pl.when(series >= 0).then(series).otherwise(None).alias("regime"))


def feature_frame(
    bars: pl.DataFrame,
    regime: RegimeModel,
    *,
    feats: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """time, close, atr and BAR_FEATURES for every bar (the setup features are added per setup)."""
    return with_regime(base_feature_frame(bars, feats=feats, events=events), regime.filtered_labels(bars))


def setup_feature_frame(frame: pl.DataFrame, setups: pl.DataFrame) -> pl.DataFrame:
    """One row per setup: bar_index plus SIGNAL_FEATURES (the bar's features and the setup's own)."""
    bars = frame.with_row_index("bar_index").with_columns(pl.col("bar_index").cast(pl.Int64))
    side = pl.col("side").cast(pl.Float64)
    risk = pl.when(pl.col("risk") > 0).then(pl.col("risk")).otherwise(None)
    atr = pl.when(pl.col("atr") > 0).then(pl.col("atr")).otherwise(None)
    joined = setups.select(
        "bar_index", "side", "risk", "reward", "risk_reward", "confidence", "fvg", "spread_price"
    ).join(bars, on="bar_index", how="left")
    return joined.with_columns(
        side=side,
        risk_atr=pl.col("risk") / atr,
        reward_atr=pl.col("reward") / atr,
        setup_confidence=pl.col("confidence"),
        setup_fvg=pl.col("fvg").cast(pl.Float64),
        spread_r=pl.col("spread_price") / risk,
        structure_with_side=pl.col("market_structure").cast(pl.Float64) * side,
        returns_5_with_side=pl.col("returns_5") * side,
        returns_20_with_side=pl.col("returns_20") * side,
        ema21_dist_with_side=pl.col("ema21_dist_atr") * side,
        macd_hist_with_side=pl.col("macd_hist_atr") * side,
        rsi_with_side=(pl.col("rsi") - 50.0) * side,
    ).select("bar_index", *SIGNAL_FEATURES)


@dataclass(frozen=True)
class Dataset:
    """Clean, time-ordered setup rows: features, win labels, and what the trade did."""

    x: np.ndarray  # (n, len(features)) float32
    y: np.ndarray  # (n,) int8: 1 = take-profit first
    times: np.ndarray  # (n,) datetime64[us], setup bar open time (UTC)
    bar_index: np.ndarray  # (n,) setup bar position in the bars frame
    exit_index: np.ndarray  # (n,) bar where the trade ended
    side: np.ndarray  # (n,) +1 BUY / -1 SELL
    r_multiple: np.ndarray  # (n,) realised R after the spread
    reward_r: np.ndarray  # (n,) the setup's R multiple (reward / risk)
    cost_r: np.ndarray  # (n,) spread in R
    risk: np.ndarray  # (n,) stop distance in price units
    features: tuple[str, ...] = SIGNAL_FEATURES

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, r: range | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(r, range):
            r = np.arange(r.start, r.stop)
        return self.x[r], self.y[r]


def build_dataset(
    frame: pl.DataFrame,
    setups: EngineSetups,
    features: tuple[str, ...] = SIGNAL_FEATURES,
    eligible_only: bool = True,
) -> Dataset:
    """The setups (those passing the bar gates, by default) with a known outcome and no null feature."""
    s = setups.frame.with_columns(
        outcome=pl.Series(setups.outcome.outcome),
        exit_index=pl.Series(setups.outcome.exit_index),
        r_multiple=pl.Series(setups.outcome.r_multiple),
    )
    if eligible_only:
        s = s.filter(pl.col("eligible"))
    s = s.filter(pl.col("outcome") >= 0)
    feats = setup_feature_frame(frame, s)
    missing = [c for c in features if c not in feats.columns]
    if missing:
        raise ValueError(f"feature frame lacks column(s): {', '.join(missing)}")
    table = pl.concat(
        [
            s.select(
                "time",
                "bar_index",
                "outcome",
                "exit_index",
                "r_multiple",
                "side",
                "risk_reward",
                "risk",
                "spread_price",
            ).rename({"side": "trade_side", "risk_reward": "trade_rr", "risk": "trade_risk"}),
            feats.select(features),
        ],
        how="horizontal",
    )
    float_cols = [c for c in features if table.schema[c].is_float()]
    clean = table.with_columns(pl.col(float_cols).fill_nan(None)).drop_nulls(list(features))
    clean = clean.filter(
        pl.all_horizontal([pl.col(c).is_finite() for c in float_cols]) if float_cols else pl.lit(True)
    )
    risk = clean["trade_risk"].to_numpy().astype(np.float64)
    return Dataset(
        x=clean.select(features).to_numpy().astype(np.float32),
        y=(clean["outcome"].to_numpy() == 1).astype(np.int8),
        times=clean["time"].dt.replace_time_zone(None).to_numpy(),
        bar_index=clean["bar_index"].to_numpy().astype(np.int64),
        exit_index=clean["exit_index"].to_numpy().astype(np.int64),
        side=clean["trade_side"].to_numpy().astype(np.int8),
        r_multiple=clean["r_multiple"].to_numpy().astype(np.float64),
        reward_r=clean["trade_rr"].to_numpy().astype(np.float64),
        cost_r=clean["spread_price"].to_numpy().astype(np.float64) / risk,
        risk=risk,
        features=tuple(features),
    )


# --------------------------------------------------------------------------- walk-forward splits


@dataclass(frozen=True, slots=True)
class Split:
    """One walk-forward fold over dataset rows: fit on `train`, stop early and calibrate on `valid`,
    score on `test`; `gap` unused rows separate train from valid and valid from test."""

    fold: int
    train: range
    valid: range
    test: range
    gap: int


def walk_forward_splits(
    n: int,
    n_folds: int = 4,
    test_size: int = 1000,
    valid_size: int = 1000,
    gap: int = DEFAULT_GAP,
    min_train: int = 1000,
) -> list[Split]:
    """Expanding-window folds over time-ordered rows; the last fold's test block ends at the last row.

    The test blocks are consecutive and never overlap; every train/valid/test block is separated
    by `gap` rows, and `purge` then drops the rows whose trade was still open when the next block began.
    """
    if gap < 0:
        raise ValueError(f"gap must not be negative, got {gap}")
    if min(n_folds, test_size, valid_size, min_train) < 1:
        raise ValueError("n_folds, test_size, valid_size and min_train must be positive")
    first_test = n - n_folds * test_size
    first_train_end = first_test - 2 * gap - valid_size
    if first_train_end < min_train:
        raise ValueError(
            f"{n} rows are too few for {n_folds} folds of {test_size} test rows "
            f"(+{valid_size} validation, gaps {gap}, >= {min_train} training rows)"
        )
    splits = []
    for k in range(n_folds):
        test_start = first_test + k * test_size
        valid_start = test_start - gap - valid_size
        splits.append(
            Split(
                fold=k,
                train=range(0, valid_start - gap),
                valid=range(valid_start, test_start - gap),
                test=range(test_start, test_start + test_size),
                gap=gap,
            )
        )
    return splits


def purge(ds: Dataset, rows: range, before: int) -> np.ndarray:
    """Row positions of `rows` whose trade ended before row `before`'s setup bar (no label overlaps it)."""
    idx = np.arange(rows.start, rows.stop)
    if before >= len(ds):
        return idx
    return idx[ds.exit_index[idx] < ds.bar_index[before]]


def holdout_split(
    n: int, test_size: int, valid_size: int, gap: int = DEFAULT_GAP, min_train: int = 1000
) -> Split:
    """The single fold that ends at the last row (the model that goes to the registry)."""
    return walk_forward_splits(n, 1, test_size, valid_size, gap, min_train)[0]
