"""The paper account as JSON (balance, positions, deals, ticket counter, the market time it has seen),
written atomically after every change when the broker has a `state_path`, and read back on start.

`PaperState` is a part of `PaperBroker` (a mixin: it reads and sets the broker's own state).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trading.broker.base import BrokerError, BrokerErrorKind
from trading.domain import Deal, DealEntry, DealReason, Position, Side

if TYPE_CHECKING:
    from trading.broker.paper import PaperBroker

STATE_VERSION = 1


class PaperState:
    """Saving and restoring `PaperBroker`'s account, and its ticket counters."""

    def _take_ticket(self: PaperBroker) -> int:
        """Orders and positions (a position's ticket is its opening order's)."""
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket

    def _take_deal(self: PaperBroker) -> int:
        """Deals: their own sequence, as on MT5, so positions read #1, #2, #3."""
        ticket = self._next_deal
        self._next_deal += 1
        return ticket

    def to_state(self: PaperBroker) -> dict[str, Any]:
        """The account as plain JSON-able data: balance, positions, deals, ticket counter."""
        return {
            "version": STATE_VERSION,
            "symbol": self.symbol,
            "magic": self.magic,
            "account": {"login": self.config.login, "balance": self._balance, "currency": "USD"},
            "next_ticket": self._next_ticket,
            "next_deal": self._next_deal,
            "positions": [_record_to_json(p) for p in self._positions.values()],
            "deals": [_record_to_json(d) for d in self._deals],
            "market_time": self.market_time.isoformat() if self.market_time else None,
        }

    def from_state(self: PaperBroker, state: Mapping[str, Any]) -> None:
        """Replace this broker's account with a saved one (config and price are kept).
        Raises BrokerError(CONFIG) naming the problem; nothing changes on error."""
        try:
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"state version {state.get('version')!r}, expected {STATE_VERSION}")
            if state.get("symbol") != self.symbol:
                raise ValueError(
                    f"state is for symbol {state.get('symbol')!r}, broker trades {self.symbol!r}"
                )
            balance = float(state["account"]["balance"])
            positions = [_record_from_json(Position, p) for p in state["positions"]]
            deals = [_record_from_json(Deal, d) for d in state["deals"]]
            next_ticket = int(state["next_ticket"])
            next_deal = int(state.get("next_deal", next_ticket))  # older files: one counter for both
            used = [p.ticket for p in positions] + [d.position_ticket for d in deals]
            if used and next_ticket <= max(used):
                raise ValueError(f"ticket counter {next_ticket} is not above the highest ticket {max(used)}")
            deal_tickets = [d.ticket for d in deals]
            if deal_tickets and next_deal <= max(deal_tickets):
                raise ValueError(
                    f"deal counter {next_deal} is not above the highest deal {max(deal_tickets)}"
                )
            seen = [p.open_time for p in positions] + [d.time for d in deals]
            if state.get("market_time"):
                moment = datetime.fromisoformat(state["market_time"])
                if moment.tzinfo is None:
                    raise ValueError(f"market_time {state['market_time']!r} has no time zone")
                seen.append(moment.astimezone(UTC))
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(BrokerErrorKind.CONFIG, f"paper account state is invalid: {exc}") from exc
        self._balance = round(balance, 2)
        self._positions = {p.ticket: p for p in positions}
        self._deals = deals
        self._deals_in_order = all(a.time <= b.time for a, b in itertools.pairwise(deals))
        self._next_ticket = next_ticket
        self._next_deal = next_deal
        self._market_time = max(seen) if seen else None

    @property
    def market_time(self: PaperBroker) -> datetime | None:
        """The latest market moment the account has seen (a price, an order, a fill); a restarted
        market resumes after it."""
        times = [t for t in (self._market_time, self._tick.time if self._tick else None) if t is not None]
        return max(times) if times else None

    def _save(self: PaperBroker) -> None:
        if self.state_path is None:
            return
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.to_state(), fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @staticmethod
    def _read_state_file(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BrokerError(
                BrokerErrorKind.CONFIG, f"paper state file {path} is unreadable: {exc}"
            ) from exc


def _record_to_json(record: Position | Deal) -> dict[str, Any]:
    out = asdict(record)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.astimezone(UTC).isoformat()
        elif isinstance(value, Side | DealEntry | DealReason):
            out[key] = value.value
    return out


def _record_from_json(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    values = dict(data)
    for key in ("open_time", "time"):
        if key in values:
            moment = datetime.fromisoformat(values[key])
            if moment.tzinfo is None:
                raise ValueError(f"{cls.__name__}.{key} {values[key]!r} has no time zone")
            values[key] = moment.astimezone(UTC)
    if "side" in values:
        values["side"] = Side(values["side"])
    if "entry" in values:
        values["entry"] = DealEntry(values["entry"])
    if "reason" in values:
        values["reason"] = DealReason(values["reason"])
    return cls(**values)
