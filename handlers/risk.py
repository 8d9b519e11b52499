"""/risk: the mode, the limits and today's loss; `/risk mode|percent|daily|total|maxpos|reset` changes them.

Tightening applies at once; loosening becomes an approval request (a message with Approve / Reject).
"""

from __future__ import annotations

import math

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.approvals import send_approval
from handlers.common import AuditNote, clock_line, esc, join_sections, reply, section, usd, with_clock
from handlers.names import humanize
from handlers.risk_effect import risk_notes
from handlers.services import Services
from trading.engine import EngineSnapshot
from trading.risk.approvals import RiskChange
from trading.risk.modes import LIMIT_BOUNDS, RiskMode, limit_use

USAGE = (
    "Usage: /risk · /risk mode NORMAL|RECOVERY|PROTECTED|COOLDOWN|STOPPED · /risk percent 0.5 · "
    "/risk daily 3 · /risk total 10 · /risk maxpos 2 · /risk reset"
)
LIMIT_FIELDS = {
    "percent": ("risk_per_trade_pct", "risk per trade", "%"),
    "daily": ("daily_loss_pct", "daily loss limit", "%"),
    "total": ("total_loss_pct", "total loss limit", "%"),
    "maxpos": ("max_positions", "max positions", ""),
}
# the ranges trading.risk.modes.LIMIT_BOUNDS allows, said in a trader's words
ALLOWED_WORDS = {
    "risk_per_trade_pct": "Risk per trade can be above {low:g} % and at most {high:g} % of the balance",
    "daily_loss_pct": "The daily loss limit can be above {low:g} % and at most {high:g} % of the balance",
    "total_loss_pct": "The total loss limit can be above {low:g} % and at most {high:g} %",
    "max_positions": "Max positions can be {low:g} to {high:g}",
}


class UsageError(ValueError):
    pass


def risk_text(snap: EngineSnapshot, notes: list[str] | None = None) -> str:
    lim, risk = snap.limits, snap.risk
    balance = snap.account.balance if snap.account else risk.day_start_balance
    use = limit_use(risk, lim, balance)
    settings = section(
        "Settings",
        [
            f"Risk/trade <code>{lim.risk_per_trade_pct:g}%</code>",
            f"Max daily loss <code>{lim.daily_loss_pct:g}%</code> ({usd(use.daily_limit)})",
            f"Max total loss <code>{lim.total_loss_pct:g}%</code> ({usd(use.total_limit)})",
            f"Lot {lim.min_lot:g}–{lim.max_lot:g} · max positions {lim.max_positions}",
        ],
    )
    state = section(
        "Current state",
        [
            f"Mode <code>{snap.mode.mode}</code> ({esc(humanize(snap.mode.reason))})",
            f"Floor set by user <code>{risk.manual_floor}</code>",
            f"Daily loss {usd(use.daily_loss)} / {usd(use.daily_limit)} ({use.daily_fraction:.0%} used)",
            f"Total loss {usd(use.total_loss)} / {usd(use.total_limit)} ({use.total_fraction:.0%} used)",
            f"Streak {risk.consecutive_losses}L",
        ],
    )
    effect = section("Will it show in the lots?", [esc(n) for n in notes or []])
    return join_sections("🛡 <b>RISK</b>", settings, state, effect, clock_line(snap.time))


def parse_change(args: str, snap: EngineSnapshot) -> RiskChange:
    """`mode PROTECTED` / `percent 0.5` / ... -> a RiskChange; UsageError on anything else."""
    parts = args.split()
    if not parts:
        raise UsageError("missing subcommand")
    what = parts[0].lower()
    if what == "reset" and len(parts) == 1:
        return RiskChange("reset_total", "reset the total-loss reference to the current balance", {})
    if len(parts) != 2:
        raise UsageError("expected one value")
    value = parts[1]
    if what == "mode":
        name = value.upper()
        if name not in RiskMode.__members__:
            raise UsageError(f"unknown mode {value!r}")
        return RiskChange("mode", f"risk mode floor {snap.risk.manual_floor} → {name}", {"mode": name})
    if what not in LIMIT_FIELDS:
        raise UsageError(f"unknown subcommand {what!r}")
    field, label, unit = LIMIT_FIELDS[what]
    try:
        number: float | int = int(value) if field == "max_positions" else float(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a {'whole ' if field == 'max_positions' else ''}number") from None
    if not math.isfinite(number):
        raise UsageError(f"{value!r} is not a number")
    bound = LIMIT_BOUNDS[field]
    if not bound.holds(number):
        words = ALLOWED_WORDS[field].format(low=bound.low, high=bound.high)
        raise UsageError(f"{words}; you asked {number:g}{unit and ' ' + unit}")
    current = getattr(snap.limits, field)
    return RiskChange("limits", f"{label} {current:g}{unit} → {number:g}{unit}", {field: number})


async def risk(message: Message, command: CommandObject, ctx: Services, actor: str, audit: AuditNote) -> None:
    snap = ctx.engine.snapshot()
    if not command.args:
        await reply(message, risk_text(snap, risk_notes(snap.limits.risk_per_trade_pct, ctx.engine)))
        return
    try:
        change = parse_change(command.args, snap)
        result = await ctx.engine.request_risk_change(change, by=actor)
    except (ValueError, TypeError) as exc:
        audit.result = f"usage: {exc}"
        await reply(message, f"{esc(exc)}\n{esc(USAGE)}")
        return
    audit.result = result.message
    pct = change.params.get("risk_per_trade_pct") if change.kind == "limits" else None
    notes = risk_notes(float(pct), ctx.engine) if pct is not None else []
    if result.approval is not None:
        await send_approval(message, ctx, result.approval, notes)
    else:
        text = f"✅ {esc(result.message)}"
        if notes:
            text += "\n\n" + section("Will it show in the lots?", [esc(n) for n in notes])
        await reply(message, with_clock(text, ctx.engine.snapshot().time))


def make_router() -> Router:
    return Router(name="risk")
