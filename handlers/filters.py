"""/filters: the latest decision's verdict for every entry gate, with its reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from aiogram import Router
from aiogram.types import Message

from handlers.common import clock_line, esc, reply
from handlers.services import Services
from trading.gates import GateResult
from trading.records import Decision
from trading.risk.modes import RiskLimits
from trading.timezones import fmt_wib

LOT_RE = re.compile(r"([\d.]+) lot, ([\d.]+)% at risk")


def gate_line(g: GateResult, limits: RiskLimits | None = None) -> str:
    mark = "⏭" if g.skipped else "✅" if g.passed else "❌"
    return f"{mark} <b>{esc(g.name)}</b>: {esc(g.reason)}{lot_cap_note(g, limits)}"


def lot_cap_note(g: GateResult, limits: RiskLimits | None) -> str:
    """`lot_size: 0.02 lot, 0.52% at risk` under a 2 % setting: say that the lot band held it there."""
    found = LOT_RE.search(g.reason) if g.name == "lot_size" and g.passed and limits is not None else None
    if found is None or limits is None:
        return ""
    lots, at_risk = float(found.group(1)), float(found.group(2))
    if lots < limits.max_lot - 1e-9 or at_risk >= limits.risk_per_trade_pct - 0.005:
        return ""
    return (
        f"\n   ↳ capped by the lot band (MAX_LOT {limits.max_lot:g} in .env): risk per trade "
        f"{limits.risk_per_trade_pct:g}% would need a larger lot"
    )


def gate_count(gates: Sequence[GateResult]) -> str:
    """`12 passed, 5 skipped of 17`: every listed gate is counted once (a skipped gate neither passed nor failed)."""
    skipped = sum(1 for g in gates if g.skipped)
    passed = sum(1 for g in gates if g.passed and not g.skipped)
    failed = len(gates) - skipped - passed
    parts = (
        [f"{passed} passed"]
        + ([f"{failed} failed"] if failed else [])
        + ([f"{skipped} skipped"] if skipped else [])
    )
    return f"{', '.join(parts)} of {len(gates)}"


def filters_text(decision: Decision | None, now: datetime, limits: RiskLimits | None = None) -> str:
    if decision is None:
        return f"🔍 <b>FILTERS</b>\n\nNo decision yet: wait for the next M15 candle.\n\n{clock_line(now)}"
    head = (
        f"🔍 <b>FILTERS</b> · {gate_count(decision.gates)} · bar {fmt_wib(decision.bar_time, with_date=True)}\n"
        f"Verdict: <b>{esc(decision.action)}</b> — {esc(decision.reason)}"
    )
    lines = [gate_line(g, limits) for g in decision.gates]
    return "\n".join([head, "", *lines, "", clock_line(now)])


async def filters(message: Message, ctx: Services) -> None:
    snap = ctx.engine.snapshot()
    await reply(message, filters_text(snap.last_decision, snap.time, snap.limits))


def make_router() -> Router:
    return Router(name="filters")
