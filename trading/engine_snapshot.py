"""What handlers and reports see of the engine: one immutable snapshot (`TradingEngine.snapshot`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trading.analysis import MarketAnalysis
from trading.domain import AccountInfo, Position
from trading.records import Decision
from trading.risk.approvals import Approval
from trading.risk.modes import ModeDecision, RiskLimits, RiskState


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    time: datetime
    account: AccountInfo | None
    positions: tuple[Position, ...]
    mode: ModeDecision
    paused: bool
    risk: RiskState
    limits: RiskLimits
    analysis: MarketAnalysis | None
    last_decision: Decision | None
    pending_approvals: tuple[Approval, ...]
    timing: dict[str, tuple[float, float]]
    started: datetime
    strategy_edge: str = ""  # the active model's out-of-sample verdict in words (the analyzer's `edge`)
