"""Dynamic confidence (spec §5): one test per modifier, level boundaries and thresholds."""

from __future__ import annotations

import pytest

from trading.market_quality import (
    level_threshold,
    market_quality,
    ml_points,
    quality_level,
    regime_points,
    session_points,
    smc_points,
    trend_points,
    volatility_points,
)


@pytest.mark.parametrize(
    ("session", "points"),
    [
        ("London-NY Overlap", 20),
        ("Golden Time", 20),
        ("London", 15),
        ("New York", 10),
        ("NY", 10),
        ("Tokyo", 0),
        ("Asia", 0),
        ("Market closed", -30),
        ("weekend", -30),
        ("Sydney", 5),
        ("", 5),
    ],
)
def test_session_points(session: str, points: float) -> None:
    assert session_points(session) == points


@pytest.mark.parametrize(
    ("regime", "points"),
    [
        ("medium_volatility", 15),
        ("medium", 15),
        ("low_volatility", 5),
        ("high", -5),
        ("crisis", -25),
        ("x", 0),
    ],
)
def test_regime_points(regime: str, points: float) -> None:
    assert regime_points(regime) == points


def test_volatility_trend_smc_and_ml_points() -> None:
    assert [volatility_points(v) for v in ("medium", "low", "high", "extreme", "?")] == [10, 0, -5, -10, 0]
    assert [
        trend_points(t) for t in ("uptrend", "strong_down", "ranging", "sideways", "medium_volatility")
    ] == [10, 10, -5, -5, 0]
    assert smc_points(True) == 10 and smc_points(False) == 0
    assert [ml_points(c) for c in (0.70, 0.69, 0.60, 0.59)] == [5, 2, 2, 0]


def test_level_boundaries_and_thresholds() -> None:
    assert [quality_level(s) for s in (80, 79.9, 65, 50, 35, 34.9)] == [
        "EXCELLENT",
        "GOOD",
        "GOOD",
        "MODERATE",
        "POOR",
        "AVOID",
    ]
    assert [level_threshold(lv) for lv in ("EXCELLENT", "GOOD", "MODERATE", "POOR", "AVOID")] == [
        0.60,
        0.65,
        0.70,
        0.80,
        0.85,
    ]
    with pytest.raises(ValueError, match="level"):
        level_threshold("GREAT")


def test_market_quality_adds_factors_and_clamps() -> None:
    q = market_quality("golden", "medium", "medium", "uptrend", True, 0.75)
    assert q.score == 100 and q.level == "EXCELLENT" and q.threshold == 0.60  # 50+20+15+10+10+10+5 -> clamp
    assert q.allows(0.60) and not q.allows(0.59)
    bad = market_quality("weekend", "crisis", "extreme", "ranging")
    assert bad.score == 0 and bad.avoid and bad.threshold == 0.85 and not bad.allows(0.99)
    mid = market_quality("Tokyo", "high", "low", "")  # 50 + 0 - 5 + 0 = 45
    assert (mid.score, mid.level, mid.threshold) == (45, "POOR", 0.80)
    assert [name for name, _ in mid.factors] == ["session", "regime", "volatility", "trend", "smc", "ml"]
    with pytest.raises(ValueError, match="thresholds"):
        market_quality("London", "low", min_threshold=0.9, max_threshold=0.8)
