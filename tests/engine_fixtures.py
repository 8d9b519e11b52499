"""Hand-made analysis records for gate, exit and engine tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from trading.analysis import MarketAnalysis, MLView, QualityView, RegimeView
from trading.domain import Side


@dataclass(frozen=True)
class FakeSetup:
    side: Side = Side.BUY
    entry: float = 3300.0
    stop_loss: float = 3290.0
    take_profit: float = 3320.0
    risk_reward: float = 2.0
    confidence: float = 0.7
    reason: str = "BOS up + bullish FVG 3295.00-3298.00"


@dataclass(frozen=True)
class FakeSession:
    name: str = "London"
    volatility: str = "high"
    multiplier: float = 1.0
    allowed: bool = True
    reason: str = ""
    is_golden: bool = False


MEDIUM = RegimeView("medium", 1, 0.9, 1.0, "TRADE")
# Tuesday 2026-03-10 10:00 UTC = 17:00 WIB (London session)
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def analysis(**overrides: object) -> MarketAnalysis:
    base: dict[str, object] = dict(
        bar_time=datetime(2026, 3, 10, 9, 45, tzinfo=UTC),
        close=3300.0,
        atr=5.0,
        spread_points=25,
        setup=FakeSetup(),
        regime=MEDIUM,
        ml=MLView(0.7),
        quality=QualityView(70.0, "GOOD", 0.65),
        session=FakeSession(),
        prev_setup_side=Side.BUY,
        recent_closes=(3299.0, 3298.5, 3299.5, 3300.0, 3300.0),
        indicators={"rsi_14": 55.0},
    )
    base.update(overrides)
    return MarketAnalysis(**base)  # type: ignore[arg-type]
