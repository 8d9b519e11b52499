"""What the paper broker's parts read and call on the broker they are part of (`PaperHost`), and the
account as data (`AccountState`) they save and restore.

`PaperState` and `PaperBars` are parts of `PaperBroker` (mixins). They subclass this protocol instead of
naming `PaperBroker` for `self`, so neither imports the broker and the broker imports both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trading.broker.paper_config import PaperConfig
from trading.domain import Deal, DealReason, Position, SymbolSpec, Tick

if TYPE_CHECKING:
    from trading.broker.feeds import Feed


@dataclass(slots=True)
class AccountState:
    """The account a paper broker keeps (its own dict and list, not copies, when taken from a broker)."""

    balance: float
    positions: dict[int, Position]
    deals: list[Deal]
    next_ticket: int
    next_deal: int
    market_time: datetime | None


class Journal(Protocol):
    """Where the account's changes are written (`trading.broker.paper_journal.PaperJournal`)."""

    def record(self, account: AccountState) -> None: ...

    def rebase(self) -> None: ...

    def close(self) -> None: ...


class PaperHost(Protocol):
    """The paper broker's own state and the helpers its parts use (`trading.broker.paper.PaperBroker`)."""

    symbol: str
    magic: int
    config: PaperConfig
    spec: SymbolSpec
    feed: Feed | None
    state_path: Path | None
    journal: Journal | None
    _tick: Tick | None
    _bars: list[dict[str, Any]]
    _balance: float
    _positions: dict[int, Position]
    _deals: list[Deal]
    _deals_in_order: bool
    _next_ticket: int
    _next_deal: int
    _market_time: datetime | None

    def _require_connected(self) -> None: ...

    def _level_close(
        self, pos: Position, reason: DealReason, level: float, price: float, crossed: bool, when: datetime
    ) -> Deal: ...

    def _stop_out(self, when: datetime) -> list[Deal]: ...

    def _save(self) -> None: ...

    def equity(self) -> float: ...

    def margin_used(self) -> float: ...

    def _profit(self, pos: Position, volume: float, price: float | None = None) -> float: ...

    def _margin(self, volume: float, price: float) -> float: ...
