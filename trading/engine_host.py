"""What the engine's parts read, set and call on the engine they are part of: its state, and the five
steps one part takes for another (publish an event, save the state, read and publish the risk mode,
close a position). One declaration, so no part imports the engine back.

The parts (`PositionWatch`, `CloseBooking`, `RiskCommands`, `SavedState`, `OrderEntry`) subclass
`EngineHost`; `TradingEngine` is made of them and sets every attribute in its `__init__` (a test
pins that). The steps are abstract: an engine that leaves one out is refused by the type checker and
cannot be built. The host comes after every part in the engine's method order, so it hides none.
(A `Protocol` would say the same, but mypy lets a part that assigns a declared attribute narrow its
type; on a plain base class it checks every assignment against the declaration.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from datetime import datetime

from trading.analysis import MarketAnalysis
from trading.broker.base import Broker
from trading.domain import AccountInfo, ClosedTrade, Position, Side, SymbolSpec, Tick
from trading.events import EventKind
from trading.exits import PositionTracker
from trading.late_fills import UnknownOrder
from trading.parameters import StrategyParams
from trading.position_inputs import PositionInputs
from trading.records import Decision, Recorder
from trading.risk.approvals import ApprovalRegistry
from trading.risk.modes import ModeDecision, RiskLimits, RiskState

# now -> (minutes to the daily close, minutes to the weekly close); None while the market is closed
MarketClock = Callable[[datetime], tuple[float | None, float | None]]
# what `PositionWatch.position_inputs` were computed from, compared by identity: analysis, risk state,
# balance, params, limits, and the position's volume, take-profit, open price and side
JudgeKey = tuple[
    MarketAnalysis | None, RiskState, float, StrategyParams, RiskLimits, float, float, float, Side
]


class EngineHost(ABC):
    """The engine as its parts see it."""

    broker: Broker
    recorder: Recorder
    params: StrategyParams
    limits: RiskLimits
    clock: Callable[[], datetime]
    market_clock: MarketClock | None
    comment: str  # the orders' comment
    spec: SymbolSpec
    account: AccountInfo | None
    state: RiskState | None
    analysis: MarketAnalysis | None
    last_decision: Decision | None
    last_tick: Tick | None
    paused: bool
    paused_by: str
    positions: dict[int, Position]
    trackers: dict[int, PositionTracker]
    recent_profits: deque[float]
    approvals: ApprovalRegistry
    approval_clock: Callable[[], datetime]  # approvals expire in wall time, even in a fast replay
    _mode: ModeDecision  # as last published
    _proposed_reset: bool  # a total-stop reset is proposed (or restored) already
    _closing: set[int]  # tickets being closed now
    _estimated: dict[int, ClosedTrade]  # booked at an estimated price, the broker's deals awaited
    _last_deal_check: datetime | None  # last re-read of the estimated closes
    _restored_positions: list[Position]  # open at the last save; matched with the broker's at start
    _unknown_orders: list[UnknownOrder]  # entries booked as failed that may still fill
    _judge_inputs: dict[int, tuple[JudgeKey, PositionInputs]]  # position_inputs, kept until a key changes

    @abstractmethod
    def mode(self) -> ModeDecision:
        """The risk mode now."""

    @abstractmethod
    def _publish(self, kind: EventKind, text: str, **data: object) -> None:
        """Publish an event on the engine's bus (after its record is stored)."""

    @abstractmethod
    async def _save_state(self) -> None:
        """Store the engine's state (`SavedState`)."""

    @abstractmethod
    async def _check_mode_change(self) -> None:
        """Publish a change of the risk mode, and propose a reset after a total stop (`RiskCommands`)."""

    @abstractmethod
    async def _close(self, pos: Position, name: str, reason: str, by: str) -> ClosedTrade | None:
        """Close `pos` at the broker and book it (`CloseBooking`); None when it is closing already or the
        broker refused."""
