"""The paper account's JSON form (`state_to_json` / `state_from_json`, checked), and `PaperState`, the part of
`PaperBroker` that takes tickets and saves and restores the account (through `PaperJournal` when the
broker has a `state_path`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

from trading.broker.base import BrokerError, BrokerErrorKind
from trading.broker.paper_host import AccountState, PaperHost
from trading.domain import Deal, DealEntry, DealReason, Position, Side

STATE_VERSION = 1


class PaperState(PaperHost):
    """Tickets, and saving and restoring the account of `PaperBroker`."""

    def _take_ticket(self) -> int:
        """Orders and positions (a position's ticket is its opening order's)."""
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket

    def _take_deal(self) -> int:
        """Deals: their own sequence, as on MT5, so positions read #1, #2, #3."""
        ticket = self._next_deal
        self._next_deal += 1
        return ticket

    def account_state(self) -> AccountState:
        return AccountState(
            self._balance,
            self._positions,
            self._deals,
            self._next_ticket,
            self._next_deal,
            self.market_time,
        )

    def to_state(self) -> dict[str, Any]:
        """The account as plain JSON-able data: balance, positions, deals, ticket counter."""
        return state_to_json(self.account_state(), self.symbol, self.magic, self.config.login)

    def from_state(self, state: Mapping[str, Any]) -> None:
        """Replace this broker's account with a saved one (config and price are kept).
        Raises BrokerError(CONFIG) naming the problem; nothing changes on error."""
        self._restore(state_from_json(state, self.symbol))
        if self.journal is not None:
            self.journal.rebase()  # the next change writes the whole account, not a change to the old one

    def _restore(self, account: AccountState) -> None:
        self._balance = round(account.balance, 2)
        self._positions = dict(account.positions)
        self._deals = list(account.deals)
        self._deals_in_order = all(a.time <= b.time for a, b in itertools.pairwise(self._deals))
        self._next_ticket = account.next_ticket
        self._next_deal = account.next_deal
        self._market_time = account.market_time

    @property
    def market_time(self) -> datetime | None:
        """The latest market moment the account has seen (a price, an order, a fill); a restarted
        market resumes after it."""
        times = [t for t in (self._market_time, self._tick.time if self._tick else None) if t is not None]
        return max(times) if times else None

    def _save(self) -> None:
        if self.journal is not None:
            self.journal.record(self.account_state())


def state_to_json(account: AccountState, symbol: str, magic: int, login: int) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "symbol": symbol,
        "magic": magic,
        "account": {"login": login, "balance": account.balance, "currency": "USD"},
        "next_ticket": account.next_ticket,
        "next_deal": account.next_deal,
        "positions": [record_to_json(p) for p in account.positions.values()],
        "deals": [record_to_json(d) for d in account.deals],
        "market_time": account.market_time.isoformat() if account.market_time else None,
    }


def state_from_json(state: Mapping[str, Any], symbol: str) -> AccountState:
    """The checked account of a saved state; BrokerError(CONFIG) naming the problem."""
    try:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"state version {state.get('version')!r}, expected {STATE_VERSION}")
        if state.get("symbol") != symbol:
            raise ValueError(f"state is for symbol {state.get('symbol')!r}, broker trades {symbol!r}")
        positions = [record_from_json(Position, p) for p in state["positions"]]
        next_ticket = int(state["next_ticket"])
        account = AccountState(
            float(state["account"]["balance"]),
            {p.ticket: p for p in positions},
            [record_from_json(Deal, d) for d in state["deals"]],
            next_ticket,
            int(state.get("next_deal", next_ticket)),  # older files: one counter for both
            aware_time(state["market_time"]) if state.get("market_time") else None,
        )
        check_account(account)
    except (KeyError, TypeError, ValueError) as exc:
        raise BrokerError(BrokerErrorKind.CONFIG, f"paper account state is invalid: {exc}") from exc
    return account


def check_account(account: AccountState) -> None:
    """ValueError when the counters would reuse a ticket; the market time covers every record."""
    used = list(account.positions) + [d.position_ticket for d in account.deals]
    if used and account.next_ticket <= max(used):
        raise ValueError(f"ticket counter {account.next_ticket} is not above the highest ticket {max(used)}")
    deal_tickets = [d.ticket for d in account.deals]
    if deal_tickets and account.next_deal <= max(deal_tickets):
        raise ValueError(
            f"deal counter {account.next_deal} is not above the highest deal {max(deal_tickets)}"
        )
    seen = [p.open_time for p in account.positions.values()] + [d.time for d in account.deals]
    seen += [account.market_time] if account.market_time else []
    account.market_time = max(seen) if seen else None


def aware_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return moment.astimezone(UTC)


def record_to_json(record: Position | Deal) -> dict[str, Any]:
    out = asdict(record)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.astimezone(UTC).isoformat()
        elif isinstance(value, Side | DealEntry | DealReason):
            out[key] = value.value
    return out


def record_from_json(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    values = dict(data)
    for key in ("open_time", "time"):
        if key in values:
            values[key] = aware_time(values[key])
    if "side" in values:
        values["side"] = Side(values["side"])
    if "entry" in values:
        values["entry"] = DealEntry(values["entry"])
    if "reason" in values:
        values["reason"] = DealReason(values["reason"])
    return cls(**values)
