"""The live loop's view of the active models.

- `SlotRegime` / `SlotSignal`: regime and signal sources over a `ModelSlot`. The analyzer holds these
  adapters, so an auto-trainer swap (one reference assignment in the slot) takes effect at the next
  bar without touching the engine. Without an active bundle the regime is unknown and there is no ML
  signal (SMC-only).
- The signal is the meta-model: `predict_setups` scores the setups the analyzer found with the same
  stationary features as training (`models.dataset.setup_feature_frame`); `gate` carries the
  probability floor and the base win rate fitted with the model, `edge` its out-of-sample verdict.
- `predict_latest(bundle, bars)`: regime reading (with the crisis override) and P(win) of the last
  closed bar's setup. The regime feature given to XGBoost is the same filtered, volatility-ordered
  label the regime reading reports, so training and serving agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.dataset import ATR_FEATURES, BASE_FEATURES, TIME_FEATURES, feature_frame, setup_feature_frame
from models.ev import EVGate
from models.regime import N_STATES, RegimeReading
from models.regime_step import RegimeStepper
from models.registry import ModelBundle, ModelSlot
from models.setups import POINT
from models.signal import SignalPrediction, decide

NO_MODEL = "SMC-only (no model): no demonstrated edge"


class SlotRegime:
    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    def filtered_probabilities(self, bars: pl.DataFrame) -> np.ndarray:
        bundle = self.slot.current
        if bundle is None:
            return np.full((bars.height, N_STATES), np.nan)
        return bundle.regime.filtered_probabilities(bars)

    def model_key(self) -> object:
        """Changes when the slot's model does (the live analyzer's incremental state is then rebuilt)."""
        return self.slot.current

    def stepper(self) -> RegimeStepper | None:
        """The forward filter carried bar to bar (`models.regime_step`) for the current model; None without one."""
        bundle = self.slot.current
        return None if bundle is None else RegimeStepper(bundle.regime)


def setups_table(bars: pl.DataFrame, rows: Sequence[int], setups: Sequence[object]) -> pl.DataFrame:
    """The setup columns `setup_feature_frame` reads, from SMCSetup-like records at bar positions `rows`."""
    spread = bars["spread"].cast(pl.Float64).to_numpy()
    return pl.DataFrame(
        {
            "bar_index": np.asarray(rows, dtype=np.int64),
            "side": [s.side.sign for s in setups],  # type: ignore[attr-defined]
            "risk": [abs(s.entry - s.stop_loss) for s in setups],  # type: ignore[attr-defined]
            "reward": [abs(s.take_profit - s.entry) for s in setups],  # type: ignore[attr-defined]
            "risk_reward": [float(s.risk_reward) for s in setups],  # type: ignore[attr-defined]
            "confidence": [float(s.confidence) for s in setups],  # type: ignore[attr-defined]
            "fvg": [1 if s.kind == "FVG" else 0 for s in setups],  # type: ignore[attr-defined]
            "spread_price": [float(spread[i]) * POINT for i in rows],
        },
        schema_overrides={"side": pl.Int8, "fvg": pl.Int8},
    )


def predict_setups(
    bundle: ModelBundle,
    bars: pl.DataFrame,
    rows: Sequence[int],
    setups: Sequence[object],
    *,
    feats: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
) -> np.ndarray:
    """Calibrated P(win) of each setup (NaN while one of its features is warming up). `feats` / `events`:
    `compute_features(bars)` / `smc.analyze(bars)` when the caller has them (not computed twice)."""
    if not rows:
        return np.empty(0)
    frame = feature_frame(bars, bundle.regime, feats=feats, events=events)
    x = setup_feature_frame(frame, setups_table(bars, rows, setups)).select(bundle.signal.feature_names)
    values = x.to_numpy().astype(np.float64)
    p = bundle.signal.predict_proba(values)
    p[~np.isfinite(values).all(axis=1)] = np.nan
    return p


def _row_features(row: Mapping[str, float], regime_label: int, setup: Any, spread: float) -> dict[str, float]:
    """SIGNAL_FEATURES of one bar and its setup, from the bar's `compute_features` and `smc.analyze` rows,
    with the arithmetic of `base_feature_frame` / `with_regime` / `setup_feature_frame` (null is NaN)."""
    nan = float("nan")

    def per(x: float, d: float) -> float:
        return x / d if d > 0 else nan  # a null divisor in the frame's `when(d > 0)`

    atr = row["atr"]
    out = {name: float(row[name]) for name in (*BASE_FEATURES, *TIME_FEATURES)}
    out |= dict(
        zip(
            ATR_FEATURES,
            (
                per(row["macd"], atr),
                per(row["macd_signal"], atr),
                per(row["macd_histogram"], atr),
                per(row["close"] - row["ema_9"], atr),
                per(row["close"] - row["ema_21"], atr),
                per(row["ema_9"] - row["ema_21"], atr),
            ),
            strict=True,
        )
    )
    out |= {
        "swing_high": float(row["swing_high"]),
        "swing_low": float(-abs(int(row["swing_low"]))),
        "fvg_signal": float(row["fvg"]),
        "ob": float(row["ob"]),
        "bos": float(row["bos"]),
        "choch": float(row["choch"]),
        "market_structure": float(row["trend"]),
        "regime": float(regime_label) if regime_label >= 0 else nan,
    }
    side = float(setup.side.sign)
    risk = abs(setup.entry - setup.stop_loss)
    out |= {
        "side": side,
        "risk_atr": per(risk, atr),
        "reward_atr": per(abs(setup.take_profit - setup.entry), atr),
        "risk_reward": float(setup.risk_reward),
        "setup_confidence": float(setup.confidence),
        "setup_fvg": 1.0 if setup.kind == "FVG" else 0.0,
        "spread_r": per(float(spread) * POINT, risk),
        "structure_with_side": out["market_structure"] * side,
        "returns_5_with_side": out["returns_5"] * side,
        "returns_20_with_side": out["returns_20"] * side,
        "ema21_dist_with_side": out["ema21_dist_atr"] * side,
        "macd_hist_with_side": out["macd_hist_atr"] * side,
        "rsi_with_side": (out["rsi"] - 50.0) * side,
    }
    return out


def predict_row(
    bundle: ModelBundle, row: Mapping[str, float], regime_label: int, setup: Any, spread: float
) -> float:
    """`predict_setups` of one bar's setup from that bar's feature and SMC rows (the live analyzer's
    incremental path): the same features, so the same calibrated P(win); NaN while one is warming up."""
    values = _row_features(row, regime_label, setup, spread)
    x = np.array([[values[name] for name in bundle.signal.feature_names]], dtype=np.float64)
    if not np.isfinite(x).all():
        return float("nan")
    return float(bundle.signal.predict_proba(x)[0])


def bundle_gate(bundle: ModelBundle) -> EVGate | None:
    d = bundle.signal.info.get("ev_gate") or bundle.metadata.get("ev_gate")
    return EVGate.from_dict(d) if isinstance(d, dict) else None


def bundle_edge(bundle: ModelBundle) -> str:
    """The version's out-of-sample verdict in words (what /status, /model and the start-up say)."""
    edge = bundle.metadata.get("edge")
    if not isinstance(edge, dict):
        return f"model {bundle.version}: no out-of-sample verdict recorded, so no demonstrated edge"
    if edge.get("demonstrated"):
        return f"model {bundle.version}: edge demonstrated out of sample"
    return f"model {bundle.version}: NO demonstrated edge out of sample (activated by hand)"


class SlotSignal:
    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    @property
    def version(self) -> str:
        bundle = self.slot.current
        return bundle.version if bundle is not None else ""

    @property
    def edge(self) -> str:
        bundle = self.slot.current
        return NO_MODEL if bundle is None else bundle_edge(bundle)

    @property
    def gate(self) -> tuple[float, float | None, str]:
        """(probability floor, base win rate, the validation numbers behind the floor)."""
        bundle = self.slot.current
        gate = bundle_gate(bundle) if bundle is not None else None
        if gate is None:
            return 0.0, None, ""
        return gate.min_prob, gate.base_rate, gate.describe()

    def predict_setups(
        self,
        bars: pl.DataFrame,
        rows: Sequence[int],
        setups: Sequence[object],
        *,
        feats: pl.DataFrame | None = None,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        bundle = self.slot.current
        if bundle is None:
            return np.full(len(rows), np.nan)
        return predict_setups(bundle, bars, rows, setups, feats=feats, events=events)

    def model_key(self) -> object:
        """Changes when the slot's model does."""
        return self.slot.current

    def predict_row(self, row: Mapping[str, float], regime_label: int, setup: Any, spread: float) -> float:
        """P(win) of the bar's setup from the bar's feature + SMC row (`predict_row`); NaN without a model."""
        bundle = self.slot.current
        return float("nan") if bundle is None else predict_row(bundle, row, regime_label, setup, spread)

    def predict_frame(self, bars: pl.DataFrame) -> np.ndarray:
        """P(win) of every bar's setup (NaN on bars without one, while warming up, or with no model)."""
        from trading import smc

        out = np.full(bars.height, np.nan)
        if self.slot.current is None:
            return out
        cols = smc.signal_columns(smc.analyze(bars))
        found = [(i, s) for i in range(bars.height) if (s := smc.signal_at(cols, i)) is not None]
        if found:
            out[[i for i, _ in found]] = self.predict_setups(
                bars, [i for i, _ in found], [s for _, s in found]
            )
        return out


@dataclass(frozen=True, slots=True)
class LivePrediction:
    version: str
    regime: RegimeReading
    signal: SignalPrediction | None  # None without a setup on the last bar or while a feature warms up
    reason: str = ""


def predict_latest(bundle: ModelBundle, bars: pl.DataFrame) -> LivePrediction:
    """Regime (with the crisis override) and P(win) of the last closed bar's setup (closed bars only).

    The prediction's `p_up` is P(win) in up/down terms (p_win for a BUY setup, 1 − p_win for a SELL)."""
    from trading import smc

    reading = bundle.regime.latest(bars)
    setup = smc.signal_at(smc.signal_columns(smc.analyze(bars)), bars.height - 1)
    if setup is None:
        return LivePrediction(bundle.version, reading, None, "no SMC setup on the last bar")
    p = float(predict_setups(bundle, bars, [bars.height - 1], [setup])[0])
    if not np.isfinite(p):
        return LivePrediction(bundle.version, reading, None, "features not ready")
    return LivePrediction(
        bundle.version, reading, decide(p if setup.side.sign > 0 else 1.0 - p, bundle.signal.threshold)
    )
