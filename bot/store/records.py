"""Frozen records the journal hands out (never ORM objects) and the codec for RiskState.

Timestamps are UTC-aware; `DailySummary.day` and `DayStats.day` are WIB calendar days.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from trading.domain import ClosedTrade, Side
from trading.gates import GateResult  # the engine's record (bot.store re-exports it): one class for a verdict


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    bar_time: datetime
    action: str  # e.g. "enter", "skip", "hold"
    side: Side | None
    p_up: float | None
    regime: str | None
    confidence: float | None
    threshold: float | None
    reason: str
    gates: tuple[GateResult, ...]
    lot: float | None
    created_at: datetime
    setup: str = ""  # empty on decisions stored before revision 0002
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def first_failed_gate(self) -> GateResult | None:
        return next((g for g in self.gates if g.blocked), None)


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """A journal trade row. `profit` is net of commission and swap; None while open."""

    id: int
    ticket: int
    symbol: str
    side: Side
    volume: float
    open_time: datetime
    open_price: float
    sl: float
    tp: float
    close_time: datetime | None
    close_price: float | None
    exit_reason: str | None
    profit: float | None
    commission: float
    swap: float
    pips: float | None
    magic: int
    comment: str
    decision_id: int | None
    status: str  # "open" | "closed"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def to_closed_trade(self) -> ClosedTrade:
        """The domain record the risk manager and reports use; only for closed rows."""
        if self.is_open or self.close_time is None or self.close_price is None:
            raise ValueError(f"trade {self.ticket} is still open")
        return ClosedTrade(
            ticket=self.ticket,
            symbol=self.symbol,
            side=self.side,
            volume=self.volume,
            open_price=self.open_price,
            close_price=self.close_price,
            open_time=self.open_time,
            close_time=self.close_time,
            profit=self.profit or 0.0,
            reason=self.exit_reason or "",
            sl=self.sl,
            tp=self.tp,
            extra=dict(self.extra),
        )


TRADE_CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TradeRecord) if f.name != "extra")


@dataclass(frozen=True, slots=True)
class SlTpChange:
    ticket: int
    time: datetime
    sl: float
    tp: float
    reason: str


@dataclass(frozen=True, slots=True)
class EquitySnapshot:
    time: datetime
    balance: float
    equity: float
    floating: float
    open_positions: int


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    version: str
    kind: str
    metrics: dict[str, Any]
    path: str
    created_at: datetime
    activated_at: datetime | None
    active: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    time: datetime
    user_id: int | None
    chat_id: int | None
    command: str
    args: str
    result: str
    allowed: bool


@dataclass(frozen=True, slots=True)
class DailySummary:
    day: date  # WIB
    trades: int
    wins: int
    losses: int
    profit: float
    start_balance: float
    end_balance: float


@dataclass(frozen=True, slots=True)
class DayStats:
    """Closed trades of one WIB day, counted from the trades table."""

    day: date
    trades: int
    wins: int
    losses: int
    profit: float


# --- RiskState <-> JSON -------------------------------------------------------------------------
