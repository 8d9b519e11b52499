"""XGBoost next-bar direction model with calibrated probabilities and a fast single-row predict.

Spec §4 hyperparameters (depth 3, eta 0.05, hist, ...), binary label "next close above this close".
Fixes of decision 11: early stopping on a validation slice that is never the reported test slice,
and the raw scores are calibrated (Platt or isotonic, fitted on that time-ordered slice) so that a
0.75 means roughly three ups in four. The booster is saved in XGBoost's own UBJ format and the
calibration as JSON; nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from models.metrics import expected_calibration_error

XGB_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "max_depth": 3,
    "eta": 0.05,
    "tree_method": "hist",
    "device": "cpu",
    "min_child_weight": 10,
    "subsample": 0.7,
    "colsample_bytree": 0.6,
    "reg_alpha": 1.0,
    "reg_lambda": 5.0,
    "gamma": 1.0,
    "max_delta_step": 1,
    "nthread": 2,
    "seed": 42,
}
NUM_BOOST_ROUND = 50
EARLY_STOPPING_ROUNDS = 5
DEFAULT_THRESHOLD = 0.60
BOOSTER_FILE = "signal.ubj"
META_FILE = "signal.json"


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True, slots=True)
class Calibration:
    """Monotone map raw P(up) -> calibrated P(up). platt: sigmoid(a*logit(p)+b); isotonic: interpolation."""

    method: str = "none"  # none | platt | isotonic
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, p: np.ndarray | float) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.method == "none":
            return p
        if self.method == "platt":
            q = np.clip(p, 1e-6, 1 - 1e-6)
            return 1.0 / (1.0 + np.exp(-(self.a * np.log(q / (1 - q)) + self.b)))
        if self.method == "isotonic":
            return np.interp(p, self.x, self.y)
        raise ValueError(f"unknown calibration method {self.method!r}")

    @classmethod
    def fit(cls, method: str, p: np.ndarray, y: np.ndarray) -> Calibration:
        p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if method == "none":
            return cls()
        if len(np.unique(y)) < 2:
            raise ValueError("calibration slice holds only one class")
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            q = np.clip(p, 1e-6, 1 - 1e-6)
            lr = LogisticRegression(C=1e6).fit(np.log(q / (1 - q)).reshape(-1, 1), y)
            return cls("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
            return cls(
                "isotonic", x=tuple(map(float, iso.X_thresholds_)), y=tuple(map(float, iso.y_thresholds_))
            )
        raise ValueError(f"unknown calibration method {method!r} (none, platt, isotonic)")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        cal = cls(
            str(d["method"]),
            float(d.get("a", 1.0)),
            float(d.get("b", 0.0)),
            tuple(map(float, d.get("x", ()))),
            tuple(map(float, d.get("y", ()))),
        )
        if cal.method not in ("none", "platt", "isotonic"):
            raise ValueError(f"unknown calibration method {cal.method!r}")
        if cal.method == "isotonic" and (len(cal.x) != len(cal.y) or len(cal.x) < 2):
            raise ValueError("isotonic calibration needs matching x/y knots (at least two)")
        return cal


# --------------------------------------------------------------------------- prediction record


@dataclass(frozen=True, slots=True)
class SignalPrediction:
    p_up: float  # calibrated probability that the next bar closes up
    action: str  # BUY | SELL | HOLD
    confidence: float  # max(p_up, 1 - p_up)


def decide(p_up: float, threshold: float = DEFAULT_THRESHOLD) -> SignalPrediction:
    """BUY if P(up) > threshold, SELL if P(down) > threshold, else HOLD (spec §4)."""
    if p_up > threshold:
        action = "BUY"
    elif 1.0 - p_up > threshold:
        action = "SELL"
    else:
        action = "HOLD"
    return SignalPrediction(float(p_up), action, float(max(p_up, 1.0 - p_up)))


# --------------------------------------------------------------------------- model


def _as_matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


class SignalModel:
    """A trained booster, its feature order, calibration and decision threshold."""

    def __init__(
        self,
        booster: xgb.Booster,
        feature_names: Sequence[str],
        calibration: Calibration | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if not 0.5 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0.5, 1), got {threshold}")
        self.booster = booster
        # one thread for inference: a single row gains nothing from a pool and the p99 gets far worse
        self.booster.set_param({"nthread": 1})
        self.feature_names = tuple(feature_names)
        self.calibration = calibration or Calibration()
        self.threshold = threshold
        self.info = dict(info or {})
        self._row = np.zeros((1, len(self.feature_names)), dtype=np.float32)

    # ----- training
    @classmethod
    def fit(
        cls,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray,
        y_valid: np.ndarray,
        feature_names: Sequence[str],
        *,
        num_boost_round: int = NUM_BOOST_ROUND,
        early_stopping_rounds: int | None = EARLY_STOPPING_ROUNDS,
        calibration: str = "platt",
        threshold: float = DEFAULT_THRESHOLD,
        params: Mapping[str, Any] | None = None,
    ) -> SignalModel:
        """Train on (x_train, y_train); stop early and calibrate on the later validation slice."""
        if x_train.shape[1] != len(feature_names) or x_valid.shape[1] != len(feature_names):
            raise ValueError(f"feature matrix width does not match {len(feature_names)} feature names")
        if len(np.unique(y_train)) < 2:
            raise ValueError("training labels hold only one class")
        names = list(feature_names)
        dtrain = xgb.DMatrix(_as_matrix(x_train), label=y_train, feature_names=names)
        dvalid = xgb.DMatrix(_as_matrix(x_valid), label=y_valid, feature_names=names)
        booster = xgb.train(
            {**XGB_PARAMS, **(params or {})},
            dtrain,
            num_boost_round=num_boost_round,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=early_stopping_rounds if len(np.unique(y_valid)) > 1 else None,
            verbose_eval=False,
        )
        best = getattr(booster, "best_iteration", None)
        if best is not None and best + 1 < booster.num_boosted_rounds():
            booster = booster[: best + 1]
        raw_valid = booster.inplace_predict(_as_matrix(x_valid))
        cal = Calibration.fit(calibration, raw_valid, y_valid)
        info = {
            "rounds": int(booster.num_boosted_rounds()),
            "n_train": len(y_train),
            "n_valid": len(y_valid),
            "ece_valid_raw": expected_calibration_error(raw_valid, y_valid),
            "ece_valid_calibrated": expected_calibration_error(cal.apply(raw_valid), y_valid),
        }
        return cls(booster, names, cal, threshold, info)

    # ----- prediction
    def raw_proba(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected a (n, {len(self.feature_names)}) matrix, got {x.shape}")
        return np.asarray(self.booster.inplace_predict(_as_matrix(x)), dtype=np.float64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(up) for every row."""
        return self.calibration.apply(self.raw_proba(x))

    def predict_row(self, values: Sequence[float] | np.ndarray | Mapping[str, float]) -> SignalPrediction:
        """One row, in feature order (or a name -> value mapping): the live loop's fast path.

        Writes into a preallocated float32 row, so it is not safe to call from two threads at once.
        """
        row = self._row
        if isinstance(values, Mapping):
            try:
                row[0, :] = [values[name] for name in self.feature_names]
            except KeyError as exc:
                raise ValueError(f"feature {exc.args[0]!r} missing from the row") from None
        else:
            if len(values) != row.shape[1]:
                raise ValueError(f"expected {row.shape[1]} feature values, got {len(values)}")
            row[0, :] = values
        np.nan_to_num(row, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        raw = float(self.booster.inplace_predict(row, validate_features=False)[0])
        return decide(float(self.calibration.apply(raw)), self.threshold)

    def importance(self, top: int = 10) -> list[tuple[str, float]]:
        # a tree booster's gain is one number per feature (xgboost types it to allow a linear booster's lists)
        gains = self.booster.get_score(importance_type="gain")
        scored = ((k, round(float(v), 4)) for k, v in gains.items() if not isinstance(v, list))
        return sorted(scored, key=lambda kv: -kv[1])[:top]

    # ----- persistence
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(d / BOOSTER_FILE))
        meta = {
            "feature_names": list(self.feature_names),
            "threshold": self.threshold,
            "calibration": self.calibration.to_dict(),
            "params": {k: v for k, v in XGB_PARAMS.items()},
            "info": self.info,
        }
        (d / META_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: str | Path, expected_features: Sequence[str] | None = None) -> SignalModel:
        d = Path(directory)
        meta = json.loads((d / META_FILE).read_text())
        names = list(meta["feature_names"])
        if expected_features is not None and names != list(expected_features):
            raise ValueError(
                f"signal model features do not match the code: model has {len(names)} "
                f"({', '.join(names[:4])}, ...), code expects {len(expected_features)}"
            )
        booster = xgb.Booster()
        booster.load_model(str(d / BOOSTER_FILE))
        if booster.num_features() != len(names):
            raise ValueError(f"booster has {booster.num_features()} features, metadata lists {len(names)}")
        return cls(
            booster,
            names,
            Calibration.from_dict(meta["calibration"]),
            float(meta["threshold"]),
            meta.get("info", {}),
        )
