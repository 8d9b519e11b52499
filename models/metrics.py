"""Classification metrics for the next-bar label: AUC, accuracy, log loss, Brier score, calibration error."""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-6


def _check(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"probabilities {p.shape} and labels {y.shape} must be 1-D of equal length")
    if len(p) == 0:
        raise ValueError("no rows to score")
    return p, y


def roc_auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    p, y = _check(p, y)
    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, p))


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    p, y = _check(p, y)
    return float(np.mean((p > 0.5) == (y == 1)))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p, y = _check(p, y)
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    p, y = _check(p, y)
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed up-rate - mean predicted| over equal-width probability bins."""
    p, y = _check(p, y)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(p))


def score(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The report's metric set; rounded for display, NaN kept as None-able float."""
    return {
        "auc": roc_auc(p, y),
        "accuracy": accuracy(p, y),
        "log_loss": log_loss(p, y),
        "brier": brier(p, y),
        "ece": expected_calibration_error(p, y),
        "n": len(p),
    }
