"""Dynamic ML confidence threshold (spec §5): a market-quality score decides how sure the model must be.

The score starts at 50 and each factor adds or subtracts (session, regime, volatility, trend,
SMC signal, ML confidence); the clamped score maps to a quality level and an ML threshold between
the live minimum 0.60 and maximum 0.85. AVOID blocks entries outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

LIVE_MIN_THRESHOLD = 0.60
LIVE_MAX_THRESHOLD = 0.85


@dataclass(frozen=True, slots=True)
class MarketQuality:
    score: float
    level: str  # EXCELLENT | GOOD | MODERATE | POOR | AVOID
    threshold: float
    factors: tuple[tuple[str, float], ...]  # (factor, points) in the order applied

    @property
    def avoid(self) -> bool:
        return self.level == "AVOID"

    def allows(self, ml_confidence: float) -> bool:
        """Spec `get_entry_decision`: never on AVOID, else the ML confidence must reach the threshold."""
        return not self.avoid and ml_confidence >= self.threshold


def session_points(session: str) -> float:
    """Spec substring match, first hit wins; "ny" must be a whole word so "Sydney" is not New York."""
    s = session.lower()
    words = set(s.replace("-", " ").replace("_", " ").split())
    for keys, points in (
        (("overlap", "golden"), 20.0),
        (("london",), 15.0),
        (("new york", "ny"), 10.0),
        (("asia", "tokyo"), 0.0),
        (("closed", "weekend"), -30.0),
    ):
        if any((k in words) if k == "ny" else (k in s) for k in keys):
            return points
    return 5.0


def regime_points(regime: str) -> float:
    r = regime.lower()
    return {
        "medium_volatility": 15.0,
        "medium": 15.0,
        "low_volatility": 5.0,
        "low": 5.0,
        "high_volatility": -5.0,
        "high": -5.0,
        "crisis": -25.0,
    }.get(r, 0.0)


def volatility_points(volatility: str) -> float:
    return {"medium": 10.0, "low": 0.0, "high": -5.0, "extreme": -10.0}.get(volatility.lower(), 0.0)


def trend_points(trend: str) -> float:
    t = trend.lower()
    if t in ("uptrend", "downtrend", "strong_up", "strong_down"):
        return 10.0
    if t in ("neutral", "ranging", "sideways"):
        return -5.0
    return 0.0


def smc_points(has_signal: bool) -> float:
    return 10.0 if has_signal else 0.0


def ml_points(ml_confidence: float) -> float:
    if ml_confidence >= 0.70:
        return 5.0
    if ml_confidence >= 0.60:
        return 2.0
    return 0.0


def quality_level(score: float) -> str:
    if score >= 80:
        return "EXCELLENT"
    if score >= 65:
        return "GOOD"
    if score >= 50:
        return "MODERATE"
    if score >= 35:
        return "POOR"
    return "AVOID"


def level_threshold(
    level: str, min_threshold: float = LIVE_MIN_THRESHOLD, max_threshold: float = LIVE_MAX_THRESHOLD
) -> float:
    """EXCELLENT -> min, GOOD 0.65, MODERATE 0.70, POOR 0.80, AVOID -> max (middle values clamped to [min, max])."""
    fixed = {"EXCELLENT": min_threshold, "GOOD": 0.65, "MODERATE": 0.70, "POOR": 0.80, "AVOID": max_threshold}
    if level not in fixed:
        raise ValueError(f"unknown quality level {level!r}")
    return min(max(fixed[level], min_threshold), max_threshold)


def market_quality(
    session: str,
    regime: str,
    volatility: str = "medium",
    trend: str = "",
    has_smc_signal: bool = False,
    ml_confidence: float = 0.0,
    min_threshold: float = LIVE_MIN_THRESHOLD,
    max_threshold: float = LIVE_MAX_THRESHOLD,
) -> MarketQuality:
    """Score the market (spec §5) and return the quality level and the ML confidence threshold."""
    return scored_quality(
        session,
        regime,
        volatility,
        trend,
        has_smc_signal,
        ml_points(ml_confidence),
        min_threshold,
        max_threshold,
    )


@lru_cache(maxsize=4096)
def scored_quality(
    session: str,
    regime: str,
    volatility: str,
    trend: str,
    has_smc_signal: bool,
    ml: float,
    min_threshold: float,
    max_threshold: float,
) -> MarketQuality:
    """`market_quality` by the ML confidence's points (`ml_points`): the few inputs repeat on every bar,
    so cached."""
    if not 0.0 < min_threshold <= max_threshold < 1.0:
        raise ValueError(f"thresholds must satisfy 0 < min <= max < 1, got {min_threshold}, {max_threshold}")
    factors = (
        ("session", session_points(session)),
        ("regime", regime_points(regime)),
        ("volatility", volatility_points(volatility)),
        ("trend", trend_points(trend)),
        ("smc", smc_points(has_smc_signal)),
        ("ml", ml),
    )
    score = min(max(50.0 + sum(p for _, p in factors), 0.0), 100.0)
    level = quality_level(score)
    return MarketQuality(score, level, level_threshold(level, min_threshold, max_threshold), factors)
