"""The live loop's view of the active models.

- `SlotRegime` / `SlotSignal`: regime and signal sources over a `ModelSlot`. The analyzer holds these
  adapters, so an auto-trainer swap (one reference assignment in the slot) takes effect at the next
  bar without touching the engine. Without an active bundle the regime is unknown and there is no ML
  signal (SMC-only).
- `predict_latest(bundle, bars)`: regime reading (with the crisis override) and the fast single-row
  signal for the last closed bar. The regime feature given to XGBoost is the same filtered,
  volatility-ordered label the regime reading reports, so training and serving agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.dataset import base_feature_frame, feature_frame, with_regime
from models.regime import N_STATES, RegimeReading
from models.registry import ModelBundle, ModelSlot
from models.signal import SignalPrediction


class SlotRegime:
    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    def filtered_probabilities(self, bars: pl.DataFrame) -> np.ndarray:
        bundle = self.slot.current
        if bundle is None:
            return np.full((bars.height, N_STATES), np.nan)
        return bundle.regime.filtered_probabilities(bars)


class SlotSignal:
    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    @property
    def version(self) -> str:
        bundle = self.slot.current
        return bundle.version if bundle is not None else ""

    def predict_frame(self, bars: pl.DataFrame) -> np.ndarray:
        """Calibrated P(up) per bar; NaN while a feature is warming up and when no model is active."""
        bundle = self.slot.current
        if bundle is None:
            return np.full(bars.height, np.nan)
        x = feature_frame(bars, bundle.regime).select(bundle.signal.feature_names).to_numpy().astype(np.float64)
        p = bundle.signal.predict_proba(x)
        p[~np.isfinite(x).all(axis=1)] = np.nan
        return p


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
    missing = [n for n, v in zip(bundle.signal.feature_names, row, strict=True) if v is None or v != v]
    if missing:
        return LivePrediction(bundle.version, reading, None, f"features not ready: {', '.join(missing[:4])}")
    return LivePrediction(bundle.version, reading, bundle.signal.predict_row(row))
