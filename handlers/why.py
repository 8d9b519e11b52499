"""/why TICKET: why the bot took that trade, on one phone screen, with the full record one button away.

The short answer: the decision's bar and verdict, the setup, the regime, the model's P(win) and EV
(or P(up) against its threshold), the decisive gates and the three features that mattered most, in
words. "Every gate and feature" (a button through the same access check and audit) sends the full
list: every gate's verdict and every number the decision saw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.common import (
    AuditNote,
    esc,
    join_sections,
    price,
    reply,
    section,
    short_time,
    signed,
    split_text,
    table,
)
from handlers.filters import gate_count, gate_line
from handlers.fmt import clock_line
from handlers.names import exit_reason_words
from handlers.services import ModelRegistryView, Services
from trading.gates import GateResult
from trading.timezones import fmt_wib

FEATURE_ORDER = (
    "close",
    "atr",
    "spread_points",
    "session",
    "regime",
    "regime_confidence",
    "ml_p_up",
    "quality_score",
    "quality_level",
    "h1_bias",
    "setup_side",
    "setup_confidence",
    "entry",
    "stop_loss",
    "take_profit",
    "risk_reward",
)
# what an SMC-only decision rests on, most telling first (no model importance to rank by)
SMC_FEATURES = ("quality_score", "setup_confidence", "risk_reward", "atr", "spread_points")
# the gates that decide an entry, in the order a trader reads them; a failed gate always comes first
DECISIVE = ("smc_setup", "ml_confidence", "ml_agreement", "market_quality", "lot_size", "regime_sleep")
MAX_DECISIVE = 4
FEATURE_NAMES = {
    "close": "Price",
    "atr": "ATR",
    "spread_points": "Spread (points)",
    "regime_confidence": "Regime confidence",
    "ml_p_up": "Model P(up)",
    "quality_score": "Market quality",
    "quality_level": "Quality level",
    "h1_bias": "H1 trend bias",
    "setup_confidence": "Setup confidence",
    "risk_reward": "Reward : risk",
    "stop_loss": "Stop-loss",
    "take_profit": "Take-profit",
    "entry": "Entry",
}
WORDS = {
    "rsi": "RSI",
    "ema": "EMA",
    "sma": "SMA",
    "macd": "MACD",
    "bb": "Bollinger",
    "atr": "ATR",
    "adx": "ADX",
    "hist": "histogram",
    "pct": "%",
    "vol": "volatility",
    "ret": "return",
    "h1": "H1",
    "m15": "M15",
    "smc": "SMC",
    "fvg": "FVG",
    "ob": "order block",
    "bos": "BOS",
    "choch": "CHoCH",
    "z": "z-score",
}
EV_RE = re.compile(r"EV ([+-]?\d+(?:\.\d+)?)R")


class WhyMore(CallbackData, prefix="why"):
    ticket: int


def feature_name(key: str) -> str:
    """`bb_lower` -> "Bollinger lower", `rsi_14` -> "RSI 14", `macd_hist` -> "MACD histogram"."""
    if key in FEATURE_NAMES:
        return FEATURE_NAMES[key]
    words = [WORDS.get(w, w) for w in key.split("_") if w]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else key


def _value(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.2f}"


def features_table(features: dict[str, Any]) -> str:
    first = [k for k in FEATURE_ORDER if k in features]
    rest = sorted(k for k in features if k not in FEATURE_ORDER)
    return table([(k[:20], _value(features[k])[:14]) for k in first + rest], right=(1,))


def top_features(features: dict[str, Any], ranked: Iterable[str], n: int = 3) -> list[str]:
    """The `n` features that mattered most: by the model's importance when there is one, else the SMC facts."""
    picked = [k for k in ranked if k in features][:n]
    for k in SMC_FEATURES:
        if len(picked) >= n:
            break
        if k in features and k not in picked:
            picked.append(k)
    return picked


def decisive_gates(gates: Sequence[GateResult]) -> list[GateResult]:
    failed = [g for g in gates if not g.passed and not g.skipped]
    rest = [g for name in DECISIVE for g in gates if g.name == name and g not in failed and not g.skipped]
    return (failed + rest)[:MAX_DECISIVE]


def model_line(decision: Any) -> str:
    if decision.p_up is None and decision.confidence is None:
        return "Model none (SMC only)"
    ml_gate = next((g for g in decision.gates if g.name == "ml_confidence"), None)
    ev = EV_RE.search(ml_gate.reason) if ml_gate is not None else None
    if ev is not None:  # the meta-model: P(win) of this setup and its expected value in R
        return f"Model P(win) {decision.confidence or 0:.0%} · EV {ev.group(1)}R"
    return (
        f"Model p(up) {decision.p_up:.2f} · confidence {decision.confidence or 0:.0%} vs threshold "
        f"{decision.threshold or 0:.0%}"
    )


def _head(trade: Any) -> str:
    state = (
        f"closed {short_time(trade.close_time)} {signed(trade.profit or 0.0)} "
        f"({esc(exit_reason_words(trade.exit_reason or '—'))})"
        if not trade.is_open
        else "open"
    )
    return (
        f"❔ <b>WHY #{trade.ticket}</b> {trade.side.value} {trade.volume:g} @ {price(trade.open_price)} "
        f"({short_time(trade.open_time)}) · {state}"
    )


def why_text(trade: Any, decision: Any, ranked: Iterable[str] = (), now: datetime | None = None) -> str:
    """The phone-sized answer."""
    clock = clock_line(now) if now is not None else ""
    if decision is None:
        return join_sections(
            _head(trade),
            "No decision is linked to this trade: it was not opened by the strategy "
            "(adopted from the broker, or opened by hand).",
            clock,
        )
    verdict = section(
        "Decision",
        [
            f"Bar {fmt_wib(decision.bar_time, with_date=True)} · {esc(decision.action)}",
            f"Setup {esc(decision.setup or decision.reason or '—')}",
            f"Regime {esc(decision.regime or 'unknown')}",
            esc(model_line(decision)),
            f"Lot {decision.lot:g}" if decision.lot else "",
        ],
    )
    shown = decisive_gates(decision.gates)
    gates = (
        (
            f"<b>Decisive gates</b> ({gate_count(decision.gates)})\n"
            + "\n".join(f"{'✅' if g.passed else '❌'} {esc(g.name)}: {esc(g.reason)}" for g in shown)
        )
        if shown
        else ""
    )
    top = top_features(decision.features or {}, ranked)
    mattered = section(
        "What mattered most",
        [f"{esc(feature_name(k))} <code>{esc(_value(decision.features[k]))}</code>" for k in top],
    )
    return join_sections(_head(trade), verdict, gates, mattered, clock)


def why_full_text(trade: Any, decision: Any, now: datetime | None = None) -> str:
    """Every gate and every number the decision saw (the button's answer)."""
    head = f"❔ <b>WHY #{trade.ticket}</b>: every gate and feature"
    if decision is None:
        return join_sections(head, "No decision is linked to this trade.")
    ml = model_line(decision)
    gates = (
        (f"<b>Gates</b> ({gate_count(decision.gates)})\n" + "\n".join(gate_line(g) for g in decision.gates))
        if decision.gates
        else "<b>Gates</b>\nnone recorded"
    )
    seen = (
        ("<b>Features it saw</b>\n" + features_table(decision.features))
        if decision.features
        else "<i>Features were not stored for this decision (journal from before revision 0002).</i>"
    )
    return join_sections(head, esc(ml), gates, seen, clock_line(now) if now is not None else "")


def model_ranking(registry: ModelRegistryView | None) -> list[str]:
    """The active model's features by importance (gain), most important first; [] without a model."""
    if registry is None:
        return []
    try:
        version = registry.active_version()
        meta = registry.metadata(version) if version else {}
    except Exception:
        return []
    found = _find_importance(meta)
    return [str(item[0]) for item in found if isinstance(item, list | tuple) and item]


def _find_importance(node: Any) -> list[Any]:
    if isinstance(node, dict):
        if isinstance(node.get("importance"), list):
            return node["importance"]
        for value in node.values():
            found = _find_importance(value)
            if found:
                return found
    return []


def more_button(ticket: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Every gate and feature", callback_data=WhyMore(ticket=ticket).pack())]
        ]
    )


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
    text = why_text(found.trade, found.decision, model_ranking(ctx.registry), ctx.engine.snapshot().time)
    await reply(
        message, text, reply_markup=more_button(found.trade.ticket) if found.decision is not None else None
    )


async def on_more(query: CallbackQuery, callback_data: WhyMore, ctx: Services, audit: AuditNote) -> None:
    assert ctx.queries is not None
    found = await ctx.queries.why(callback_data.ticket)
    if found.trade is None:
        audit.result = "no such trade"
        await query.answer(f"#{callback_data.ticket} is no longer in the journal", show_alert=True)
        return
    audit.result = "full list"
    if query.message is not None and query.bot is not None:
        for piece in split_text(why_full_text(found.trade, found.decision, ctx.engine.snapshot().time)):
            await query.bot.send_message(query.message.chat.id, piece, parse_mode="HTML")
    await query.answer()


def make_router() -> Router:
    router = Router(name="why")
    router.callback_query.register(on_more, WhyMore.filter())
    return router
