"""The live loop's one call per closed bar: regime and signal of the latest bar from the active bundle.

Features, SMC and the filtered HMM run over the window the loop already holds (200 bars); the
regime feature given to XGBoost is the same filtered, volatility-ordered label the regime reading
reports, so training and serving agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.dataset import base_feature_frame, with_regime
from models.regime import RegimeReading
from models.registry import ModelBundle
from models.signal import SignalPrediction


@dataclass(frozen=True, slots=True)
class LivePrediction:
    version: str
    regime: RegimeReading
    signal: SignalPrediction | None  # None while a feature of the last bar is still warming up
    reason: str = ""


def predict_latest(bundle: ModelBundle, bars: pl.DataFrame) -> LivePrediction:
    """Regime (with the crisis override) and ML signal for the last bar of `bars` (closed bars only)."""
    reading = bundle.regime.latest(bars)
    frame = with_regime(base_feature_frame(bars), bundle.regime.filtered_labels(bars))
    row = frame.select(bundle.signal.feature_names).row(-1)
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in row):
        missing = [n for n, v in zip(bundle.signal.feature_names, row, strict=True) if v is None or v != v]
        return LivePrediction(bundle.version, reading, None, f"features not ready: {', '.join(missing[:4])}")
    return LivePrediction(bundle.version, reading, bundle.signal.predict_row(row))

