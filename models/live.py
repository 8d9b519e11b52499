"""The live loop's view of the active models: regime and signal sources over a `ModelSlot`.

The analyzer holds these adapters, so an auto-trainer swap (one reference assignment in the slot)
takes effect at the next bar without touching the engine. Without an active bundle the regime is
unknown and there is no ML signal (SMC-only).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.dataset import feature_frame
from models.regime import N_STATES
from models.registry import ModelSlot


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
        """Calibrated P(up) per bar; NaN for every bar when no model is active."""
        bundle = self.slot.current
        if bundle is None:
            return np.full(bars.height, np.nan)
        frame = feature_frame(bars, bundle.regime)
        x = frame.select(bundle.signal.feature_names).to_numpy()
        return bundle.signal.predict_proba(x)
