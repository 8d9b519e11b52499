"""/why TICKET: why the bot took that trade — the decision row the journal linked to it: every gate's
verdict, the setup, the regime, the ML probability against its threshold, and the features it saw."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.common import AuditNote, esc, join_sections, reply, section, short_time, signed, table
from handlers.filters import gate_line
from handlers.services import Services
from trading.timezones import fmt_wib

FEATURE_ORDER = ("close", "atr", "spread_points", "session", "regime", "regime_confidence", "ml_p_up",
                 "quality_score", "quality_level", "h1_bias", "setup_side", "setup_confidence", "entry", "stop_loss",
                 "take_profit", "risk_reward")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:.2f}"
    return str(v)


def features_table(features: dict[str, Any]) -> str:
    first = [k for k in FEATURE_ORDER if k in features]
    rest = sorted(k for k in features if k not in FEATURE_ORDER)
    return table([(k[:20], _value(features[k])[:14]) for k in first + rest], right=(1,))


def why_text(trade: Any, decision: Any) -> str:
    state = (f"closed {short_time(trade.close_time)} {signed(trade.profit or 0.0)} ({esc(trade.exit_reason or '—')})"
             if not trade.is_open else "open")
    head = (f"❔ <b>WHY #{trade.ticket}</b> {trade.side.value} {trade.volume:g} @ {trade.open_price:.2f} "
            f"({short_time(trade.open_time)}) · {state}")
    if decision is None:
        return join_sections(head, "No decision is linked to this trade: it was not opened by the strategy "
                                   "(adopted from the broker, or opened by hand).")
    ml = "no model (SMC only)" if decision.p_up is None else (
        f"p(up) {decision.p_up:.2f} · confidence {decision.confidence or 0:.0%} vs threshold "
        f"{decision.threshold or 0:.0%}")
    verdict = section("Decision", [
        f"Bar {fmt_wib(decision.bar_time, with_date=True)} · {esc(decision.action)}",
        f"Setup {esc(decision.setup or decision.reason or '—')}",
        f"Regime {esc(decision.regime or '—')}",
        f"ML {ml}",
        f"Lot {decision.lot:g}" if decision.lot else "Lot —",
    ])
    gates = "<b>Gates</b>\n" + "\n".join(
        gate_line(g) for g in decision.gates) \
        if decision.gates else "<b>Gates</b>\nnone recorded"
    seen = ("<b>Features it saw</b>\n" + features_table(decision.features)) if decision.features else \
        "<i>Features were not stored for this decision (journal from before revision 0002).</i>"
    return join_sections(head, verdict, gates, seen)


async def why(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    word = (command.args or "").strip().lstrip("#")
    if not word.isdigit():
        audit.result = "usage"
        await reply(message, "Usage: /why TICKET — e.g. /why 123456 (tickets: /trades or /positions)")
        return
    assert ctx.queries is not None
    found = await ctx.queries.why(int(word))
    if found.trade is None:
        audit.result = "no such trade"
        await reply(message, f"No trade #{esc(word)} in the journal. Recent tickets: /trades")
        return
    audit.result = "decision" if found.decision is not None else "no decision"
    await reply(message, why_text(found.trade, found.decision))


def make_router() -> Router:
    return Router(name="why")
