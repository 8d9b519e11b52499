"""Signal-model dataset: the spec's 37 features, the next-bar label and time-ordered walk-forward splits.

Features come from trading's pure analysis modules (`trading.features`, `trading.smc`) plus the
volatility-ordered, filtered HMM label as `regime`; every value at row t uses bars <= t only.
The label looks one bar ahead, so the last `horizon` rows have no label and are dropped, and every
split keeps a gap of at least the horizon between the rows a model learns from and the rows it is
scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.regime import RegimeModel

BASE_FEATURES: tuple[str, ...] = (
    "rsi", "atr", "atr_percent", "macd", "macd_signal", "macd_histogram", "bb_percent_b", "bb_width",
    "ema_9", "ema_21", "returns_1", "returns_5", "returns_20", "log_returns", "volatility_20",
    "normalized_range", "avg_normalized_range", "price_position", "dist_from_sma_20", "higher_high",
    "lower_low", "hh_count_5", "ll_count_5", "volume_ratio", "high_volume",
)
SMC_FEATURES: tuple[str, ...] = ("swing_high", "swing_low", "fvg_signal", "ob", "bos", "choch", "market_structure")
TIME_FEATURES: tuple[str, ...] = ("hour", "weekday", "london_session", "ny_session")
SIGNAL_FEATURES: tuple[str, ...] = (*BASE_FEATURES, *SMC_FEATURES, *TIME_FEATURES, "regime")
LABEL_HORIZON = 1
LABEL_THRESHOLD = 0.0
LABEL_DEFINITION = "target = close[t+1] / close[t] - 1 > 0 (next M15 bar closes above this bar's close)"
DEFAULT_GAP = 50


def smc_feature_columns(bars: pl.DataFrame) -> pl.DataFrame:
    """The seven SMC inputs in the spec's encoding (swing_low is 0/-1, market_structure is the trend)."""
    from trading import smc

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


def base_feature_frame(bars: pl.DataFrame) -> pl.DataFrame:
    """time, close and every signal feature except `regime` (which depends on a fitted HMM)."""
    from trading.features import compute_features

    feats = compute_features(bars)
    missing = [c for c in (*BASE_FEATURES, *TIME_FEATURES) if c not in feats.columns]
    if missing:
        raise ValueError(f"trading.features did not produce signal feature(s): {', '.join(missing)}")
    return pl.concat(
        [feats.select("time", "close", *BASE_FEATURES, *TIME_FEATURES), smc_feature_columns(bars)],
        how="horizontal",
    ).select("time", "close", *SIGNAL_FEATURES[:-1])


def with_regime(frame: pl.DataFrame, labels: np.ndarray) -> pl.DataFrame:
    """Attach the filtered regime label; warm-up rows (-1) become null so training drops them."""
    if len(labels) != frame.height:
        raise ValueError(f"{len(labels)} regime labels for {frame.height} rows")
    series = pl.Series("regime", labels, pl.Int8)
    return frame.with_columns(pl.when(series >= 0).then(series).otherwise(None).alias("regime"))


def feature_frame(bars: pl.DataFrame, regime: RegimeModel) -> pl.DataFrame:
    """time, close and SIGNAL_FEATURES for every bar (what the live loop reads its last row from)."""
    return with_regime(base_feature_frame(bars), regime.filtered_labels(bars))


def add_label(frame: pl.DataFrame, horizon: int = LABEL_HORIZON, threshold: float = LABEL_THRESHOLD) -> pl.DataFrame:
    """`target_return` = close[t+h]/close[t] - 1 and `target` = Int8(return > threshold); null on the last h rows."""
    if horizon < 1:
        raise ValueError(f"label horizon must be >= 1 bar, got {horizon}")
    ret = pl.col("close").shift(-horizon) / pl.col("close") - 1.0
    return frame.with_columns(target_return=ret, target=(ret > threshold).cast(pl.Int8))


@dataclass(frozen=True)
class Dataset:
    """Clean, time-ordered rows: feature matrix, labels and the bar index of every row."""

    x: np.ndarray  # (n, len(features)) float32
    y: np.ndarray  # (n,) int8
    times: np.ndarray  # (n,) datetime64[us], bar open time (UTC)
    bar_index: np.ndarray  # (n,) row position in the bars frame
    prev_up: np.ndarray  # (n,) 1 if the bar itself closed above the previous close (baseline input)
    features: tuple[str, ...] = SIGNAL_FEATURES

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, r: range) -> tuple[np.ndarray, np.ndarray]:
        return self.x[r.start : r.stop], self.y[r.start : r.stop]


def build_dataset(frame: pl.DataFrame, horizon: int = LABEL_HORIZON, features: tuple[str, ...] = SIGNAL_FEATURES) -> Dataset:
    """Label the feature frame and drop every row with a null feature or no label (warm-up and the tail)."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"feature frame lacks column(s): {', '.join(missing)}")
    labelled = add_label(frame, horizon).with_row_index("bar_index").with_columns(
        prev_up=(pl.col("close") > pl.col("close").shift(1)).fill_null(False).cast(pl.Int8)
    )
    float_cols = [c for c in features if labelled.schema[c].is_float()]
    clean = labelled.with_columns(pl.col(float_cols).fill_nan(None)).drop_nulls([*features, "target"])
    return Dataset(
        x=clean.select(features).to_numpy().astype(np.float32),
        y=clean["target"].to_numpy().astype(np.int8),
        times=clean["time"].dt.replace_time_zone(None).to_numpy(),
        bar_index=clean["bar_index"].to_numpy().astype(np.int64),
        prev_up=clean["prev_up"].to_numpy().astype(np.int8),
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
    horizon: int = LABEL_HORIZON,
) -> list[Split]:
    """Expanding-window folds; the last fold's test block ends at the last row.

    The test blocks are consecutive and never overlap; every train/valid/test block is separated
    by `gap` >= label horizon rows, so no label used for fitting overlaps a scored bar.
    """
    if gap < horizon:
        raise ValueError(f"gap {gap} must be at least the label horizon {horizon}")
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


def holdout_split(n: int, test_size: int, valid_size: int, gap: int = DEFAULT_GAP, min_train: int = 1000) -> Split:
    """The single fold that ends at the last row (the model that goes to the registry)."""
    return walk_forward_splits(n, 1, test_size, valid_size, gap, min_train)[0]
