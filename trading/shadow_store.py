"""A challenger's records on disk: its tagged journal (decisions, opened and closed trades as JSON
lines) and the engine's saved state (one JSON file, replaced atomically).

Why files and not journal tables: a challenger is paper only and self-contained; its directory holds
its paper account (`PaperBroker(state_path=...)`, written the same way), its engine state and its
rows, so adding one touches nothing live and dropping one moves one directory aside. Opens, closes and
the state are flushed and fsynced before the engine goes on, like the journal's commit (a
decision line is only flushed: the OS writes it, a power cut may lose the last few); a line torn by a kill -9
(the last one) is skipped on reading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from trading.domain import ClosedTrade, Side
from trading.records import Decision, OpenedTrade

log = logging.getLogger(__name__)

DECISIONS = "decisions.jsonl"
OPENS = "opens.jsonl"
TRADES = "trades.jsonl"
ENGINE_STATE = "engine.json"
ACCOUNT = "account.json"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON line; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipped a torn line", path)
    return out


def trade_to_json(t: ClosedTrade, risk: float) -> dict[str, Any]:
    return {
        "ticket": t.ticket,
        "symbol": t.symbol,
        "side": str(t.side),
        "volume": t.volume,
        "open_price": t.open_price,
        "close_price": t.close_price,
        "open_time": t.open_time.isoformat(),
        "close_time": t.close_time.isoformat(),
        "profit": t.profit,
        "reason": t.reason,
        "sl": t.sl,
        "tp": t.tp,
        "risk": risk,
    }


def trade_from_json(d: dict[str, Any]) -> ClosedTrade:
    return ClosedTrade(
        ticket=int(d["ticket"]),
        symbol=d["symbol"],
        side=Side(d["side"]),
        volume=float(d["volume"]),
        open_price=float(d["open_price"]),
        close_price=float(d["close_price"]),
        open_time=datetime.fromisoformat(d["open_time"]),
        close_time=datetime.fromisoformat(d["close_time"]),
        profit=float(d["profit"]),
        reason=d["reason"],
        sl=float(d["sl"]),
        tp=float(d["tp"]),
        extra={"risk_money": float(d.get("risk", 0.0))},
    )


class ShadowRecorder:
    """`trading.records.Recorder` over one challenger's directory; every row carries its tag."""

    def __init__(self, root: Path, tag: str) -> None:
        self.root = root
        self.tag = tag
        root.mkdir(parents=True, exist_ok=True)
        decisions = read_lines(root / DECISIONS)
        self._next_id = max((int(d.get("id", 0)) for d in decisions), default=0) + 1
        self._risk = {int(o["ticket"]): float(o.get("risk_money", 0.0)) for o in read_lines(root / OPENS)}
        self.closed = [trade_from_json(d) for d in read_lines(root / TRADES)]
        self._closed_tickets = {t.ticket for t in self.closed}
        self.decisions = len(decisions)

    def _append(self, name: str, row: dict[str, Any], durable: bool = True) -> None:
        with (self.root / name).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"tag": self.tag, **row}, default=str) + "\n")
            fh.flush()
            if durable:
                os.fsync(fh.fileno())

    async def _append_durable(self, name: str, row: dict[str, Any]) -> None:
        await asyncio.to_thread(self._append, name, row)  # fsync off the event loop; still awaited in order

    async def record_decision(self, decision: Decision) -> int | None:
        ident = self._next_id
        self._next_id += 1
        self.decisions += 1
        self._append(
            DECISIONS,
            {
                "id": ident,
                "bar_time": decision.bar_time.isoformat(),
                "action": decision.action,
                "side": str(decision.side) if decision.side else None,
                "reason": decision.reason,
                "blocked_by": decision.blocked_by,
                "lot": decision.lot,
                "p_up": decision.p_up,
                "regime": decision.regime,
                "model_version": decision.model_version,
            },
            durable=False,
        )  # a paper order is no real risk: its open line and account file are the durable record
        return ident

    async def record_order_failed(self, decision: Decision) -> None:
        self._append(
            DECISIONS,
            {
                "id": decision.id,
                "bar_time": decision.bar_time.isoformat(),
                "action": decision.action,
                "reason": decision.reason,
                "order_failed": True,
            },
        )

    async def record_open(self, trade: OpenedTrade) -> None:
        self._risk[trade.ticket] = trade.risk_money
        await self._append_durable(
            OPENS,
            {
                "ticket": trade.ticket,
                "side": str(trade.side),
                "volume": trade.volume,
                "open_price": trade.open_price,
                "open_time": trade.open_time.isoformat(),
                "sl": trade.sl,
                "tp": trade.tp,
                "risk_money": trade.risk_money,
                "decision_id": trade.decision_id,
            },
        )

    async def record_late_fill(self, decision: Decision, trade: OpenedTrade) -> None:
        """An order taken for failed filled after all (a paper account fills at once, so hardly ever)."""
        await self.record_open(trade)

    async def record_sl_change(self, ticket: int, time: datetime, sl: float, tp: float, reason: str) -> None:
        return None  # the paper account holds the current SL/TP; the shadow journal keeps opens and closes

    async def record_close(self, trade: ClosedTrade) -> bool:
        if trade.ticket in self._closed_tickets:
            return False
        risk = self._risk.get(trade.ticket, 0.0)
        await self._append_durable(TRADES, trade_to_json(trade, risk))
        self._closed_tickets.add(trade.ticket)
        self.closed.append(replace(trade, extra={"risk_money": risk}))  # as read back after a restart
        return True

    async def correct_close(self, trade: ClosedTrade) -> bool:
        return False  # a paper account books its own deals exactly: nothing to correct

    async def save_state(self, state: dict[str, Any]) -> None:
        # the fsync in a worker thread: the event loop (Telegram, the next job) does not wait on the disk
        await asyncio.to_thread(write_json_atomic, self.root / ENGINE_STATE, state)

    def load_state(self) -> dict[str, Any] | None:
        saved = read_json(self.root / ENGINE_STATE)
        return saved if isinstance(saved, dict) else None
