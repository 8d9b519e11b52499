"""/market: the latest bar's analysis: price, spread, regime, SMC setup, ML signal and threshold, quality, session."""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.types import Message

from handlers.common import clock_line, esc, join_sections, price, reply, section
from handlers.services import Services
from trading.analysis import MarketAnalysis
from trading.timezones import fmt_wib


def quality_line(a: MarketAnalysis) -> str:
    """The market-quality gate's own verdict (it blocks only AVOID), as /filters shows it; the model's
    threshold belongs to the ML line above, and only when there is a model."""
    level = a.quality.level.upper()
    verdict = "⛔ blocks entries" if level == "AVOID" else "✅ gate passes (only AVOID blocks)"
    return f"Quality {esc(level)} ({a.quality.score:.0f}) · {verdict}"


def market_text(a: MarketAnalysis | None, now: datetime, threshold: float | None = None) -> str:
    if a is None:
        return f"📊 <b>MARKET</b>\n\nNo analysis yet: wait for the next M15 candle.\n\n{clock_line(now)}"
    price_block = section(
        "Price",
        [
            f"XAUUSD <code>{price(a.close)}</code> (bar {fmt_wib(a.bar_close_time)})",
            f"ATR <code>{a.atr:.2f}</code> · Spread <code>{a.spread_points:,}</code> pts",
        ],
    )
    s = a.setup
    setup = (
        (
            f"{'🟢' if str(s.side) == 'BUY' else '🔴'} {s.side} {s.confidence:.0%} · entry {price(s.entry)} "
            f"SL {price(s.stop_loss)} TP {price(s.take_profit)} (R:R 1:{s.risk_reward:.1f})"
        )
        if s
        else "none"
    )
    signal = [f"SMC {setup}"]
    if s:
        signal.append(f"<i>{esc(s.reason[:120])}</i>")
    if a.ml is not None and a.ml.is_meta:
        signal.append(
            f"ML P(win) <code>{a.ml.confidence:.0%}</code> for the {a.ml.direction} setup · floor "
            f"{a.ml.min_prob:.0%} (the EV gate's verdict: /filters)"
        )
    elif a.ml is not None:
        thr = f" / threshold {threshold:.0%}" if threshold is not None else ""
        signal.append(f"ML p_up <code>{a.ml.p_up:.2f}</code> → {a.ml.direction} {a.ml.confidence:.0%}{thr}")
    else:
        signal.append("ML no model (SMC only)")
    signal.append(quality_line(a))
    regime = (
        f"Regime {esc(a.regime.name)} ({a.regime.confidence:.0%}) → {esc(a.regime.recommendation)}"
        if a.regime.name != "unknown"
        else "Regime unknown (no regime model)"
    )
    market = section(
        "Market",
        [
            regime,
            f"Session {esc(a.session.name)} · vol {esc(a.session.volatility)}"
            + ("" if a.session.allowed else f" · ⛔ {esc(a.session.reason)}"),
        ],
    )
    return join_sections("📊 <b>MARKET</b>", price_block, section("Signal", signal), market, clock_line(now))


async def market(message: Message, ctx: Services) -> None:
    snap = ctx.engine.snapshot()
    threshold = snap.last_decision.threshold if snap.last_decision else None
    await reply(message, market_text(snap.analysis, snap.time, threshold))


def make_router() -> Router:
    return Router(name="market")
