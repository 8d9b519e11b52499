"""Records the engine writes before it reports: decisions, opened trades, SL moves and closes.

`Recorder` is what the engine awaits (the journal implements it in the runtime; `MemoryRecorder`
serves tests and backtests). The engine publishes an event only after the recorder returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, cast

from trading.analysis import MarketAnalysis
from trading.domain import ClosedTrade, Side
from trading.gates import GateResult
from trading.immutable import immutable

# the reason of an entry decision the recorder could not store: no order goes out without its record
UNRECORDED_ENTRY = "journal: the decision could not be stored, so no order was sent"


@immutable
class Decision:
    """One bar's decision (`immutable`: one is built on every bar)."""

    bar_time: datetime
    action: str  # "enter" | "skip" | "error"
    side: Side | None
    reason: str  # the first blocking gate's reason, or the setup's reason on entry
    gates: tuple[GateResult, ...]
    regime: str
    p_up: float | None
    threshold: float
    setup_reason: str = ""
    lot: float = 0.0
    lot_steps: tuple[str, ...] = ()
    model_version: str = ""
    id: int | None = None  # set by the recorder
    features: dict[str, Any] = field(default_factory=dict)  # what the decision saw (decision_features)

    @property
    def blocked_by(self) -> str | None:
        for g in self.gates:
            if g.blocked:
                return g.name
        return None


def decision_features(a: MarketAnalysis) -> dict[str, Any]:
    """The numbers a decision was taken on, for the journal (/why): indicators, regime, ML, quality."""
    seen: dict[str, Any] = {k: round(v, 5) for k, v in a.indicators.items()}
    seen.update(
        close=a.close,
        atr=round(a.atr, 5),
        spread_points=a.spread_points,
        session=a.session.name,
        regime=a.regime.name,
        regime_confidence=round(a.regime.confidence, 4),
        quality_score=round(a.quality.score, 2),
        quality_level=a.quality.level,
        h1_bias=a.h1_bias,
    )
    if a.ml is not None:
        seen["ml_p_up"] = round(a.ml.p_up, 4)
    if a.setup is not None:
        seen.update(
            setup_side=str(a.setup.side),
            setup_confidence=a.setup.confidence,
            entry=a.setup.entry,
            stop_loss=a.setup.stop_loss,
            take_profit=a.setup.take_profit,
            risk_reward=a.setup.risk_reward,
        )
    return seen


@dataclass(frozen=True, slots=True)
class OpenedTrade:
    ticket: int
    side: Side
    volume: float
    open_price: float
    open_time: datetime
    sl: float
    tp: float
    magic: int
    comment: str
    decision_id: int | None = None
    requested_price: float = 0.0
    risk_money: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Recorder(Protocol):
    async def record_decision(self, decision: Decision) -> int | None: ...

    async def record_order_failed(self, decision: Decision) -> None:
        """The entry this decision chose was refused by the broker: mark the stored decision so."""
        ...

    async def record_open(self, trade: OpenedTrade) -> None: ...

    async def record_late_fill(self, decision: Decision, trade: OpenedTrade) -> None:
        """An order taken for failed (its outcome unknown) filled after all: store the open linked to
        its decision, and the decision's new outcome (`filled_late`)."""
        ...

    async def record_sl_change(
        self, ticket: int, time: datetime, sl: float, tp: float, reason: str
    ) -> None: ...

    async def record_close(self, trade: ClosedTrade) -> bool:
        """Store a close; False when it was already stored (idempotent)."""
        ...

    async def correct_close(self, trade: ClosedTrade) -> bool:
        """Replace a stored close by the broker's own booking of it (its deals), with an audit trail.
        False when the stored close already says the same (or is unknown)."""
        ...

    async def save_state(self, state: dict[str, Any]) -> None: ...


class DecisionsAside(Protocol):
    """A recorder that can write a decision placing no order (a skip) without the engine waiting on it."""

    def record_decision_aside(self, decision: Decision, landed: Callable[[int | None], None]) -> None:
        """Queue the row: rows land in the order queued, one at a time, each before any later
        `record_decision`; `landed` gets its id once committed (None when the journal could not
        take it and keeps it for later, as `record_decision` answers)."""
        ...


def decisions_aside(recorder: object) -> DecisionsAside | None:
    """`recorder` when it writes skips aside, else None (it writes every decision in place). A plain
    attribute look-up: isinstance on a runtime Protocol costs ~7 us, paid on every backtest bar."""
    return cast(DecisionsAside, recorder) if hasattr(recorder, "record_decision_aside") else None


class MemoryRecorder:
    """Keeps everything in lists; for tests and backtests."""

    def __init__(self, keep_decisions: bool = True) -> None:
        self.keep_decisions = keep_decisions
        self.decisions: list[Decision] = []
        self.opened: list[OpenedTrade] = []
        self.closed: list[ClosedTrade] = []
        self.sl_changes: list[tuple[int, datetime, float, float, str]] = []
        self.corrections: list[tuple[ClosedTrade, ClosedTrade]] = []  # (as booked, as the broker booked it)
        self.state: dict[str, Any] = {}
        self._closed_tickets: set[int] = set()
        self._next_id = 1

    async def record_decision(self, decision: Decision) -> int | None:
        ident = self._next_id
        self._next_id += 1
        if self.keep_decisions:
            self.decisions.append(replace(decision, id=ident))
        return ident

    async def record_order_failed(self, decision: Decision) -> None:
        self.decisions = [decision if d.id == decision.id else d for d in self.decisions]

    async def record_open(self, trade: OpenedTrade) -> None:
        self.opened.append(trade)

    async def record_late_fill(self, decision: Decision, trade: OpenedTrade) -> None:
        self.opened.append(trade)
        await self.record_order_failed(decision)

    async def record_sl_change(self, ticket: int, time: datetime, sl: float, tp: float, reason: str) -> None:
        self.sl_changes.append((ticket, time, sl, tp, reason))

    async def record_close(self, trade: ClosedTrade) -> bool:
        if trade.ticket in self._closed_tickets:
            return False
        self._closed_tickets.add(trade.ticket)
        self.closed.append(trade)
        return True

    async def correct_close(self, trade: ClosedTrade) -> bool:
        for i, old in enumerate(self.closed):
            if old.ticket == trade.ticket:
                if old == trade:
                    return False
                self.closed[i] = trade
                self.corrections.append((old, trade))
                return True
        return False

    async def save_state(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
