"""Notification texts: pure functions from an engine `Event` to Telegram HTML (spec §1.1).

`render_event(event)` returns `(html, silent)` or None for kinds that are not notifications here
(RISK_CHANGE_PROPOSED: the approval message with buttons belongs to handlers/approvals.py;
TRAINING_PROGRESS: /retrain edits its own message). Layout as in the original: a header line,
sections of `├ ` / `└ ` items under a bold title, blank lines between sections, and a
`⏰ HH:MM WIB` clock line (with the date on startup and shutdown) taken from the event's time.
Every dynamic string goes through `esc` (html.escape), so a reason containing "<b>" arrives as text.

The bot's own messages (start-up, shutdown, model swaps, error bursts, news) and the builders of the
events the app publishes (`startup_event`, `shutdown_event`, `news_event`, `error_burst_event`) live
in bot.system_messages and are re-exported here. The HTML kit (esc, numbers, sections, the clock
line) is handlers.fmt, shared with every command's reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from bot.system_messages import (
    error_burst,
    error_burst_event,
    info,
    journal,
    limits_drift_notes,
    model_swapped,
    news_blackout,
    news_event,
    shutdown,
    shutdown_event,
    startup,
    startup_event,
)
from handlers import echo
from handlers.fmt import (
    clip,
    clock_line,
    code,
    compose,
    esc,
    field,
    fmt_duration,
    pct,
    plural,
    price,
    section,
    signed,
    usd,
)
from handlers.names import exit_reason_words, humanize, who
from trading.events import Event, EventKind
from trading.expected_value import CONTRACT_SIZE  # XAUUSD ounces per lot, when an event does not say

log = logging.getLogger(__name__)

PIP = 0.1  # XAUUSD pip as the original counts it: $0.10 of price
DEFAULT_SYMBOL = "XAUUSD"
MAX_REASON = 200  # characters of a free-text reason kept in a message

MODE_EMOJI = {"NORMAL": "🟢", "RECOVERY": "🟠", "PROTECTED": "🟡", "COOLDOWN": "🧊", "STOPPED": "🔴"}


class Rendered(NamedTuple):
    html: str
    silent: bool = False


# ---------------------------------------------------------------------------------------- helpers


def pips(price_move: float) -> float:
    """Signed price distance in pips, 1 pip = $0.10 of price (the original's XAUUSD convention:
    2,345.60 -> 2,345.70 is one pip, so a $1.00 move is 10 pips)."""
    return price_move / PIP


# ---------------------------------------------------------------------------------------- trades


def trade_opened(e: Event) -> str:
    """data: trade=OpenedTrade, decision=Decision (optional), symbol, contract_size (optional)."""
    trade = e.data["trade"]
    decision = e.data.get("decision")
    extra: Mapping[str, Any] = field(trade, "extra", {}) or {}
    side = str(field(trade, "side"))
    buy = side == "BUY"
    symbol = e.data.get("symbol", DEFAULT_SYMBOL)
    contract = float(e.data.get("contract_size", CONTRACT_SIZE))
    entry, sl, tp, lot = trade.open_price, trade.sl, trade.tp, trade.volume
    risk_d = abs(entry - sl) if sl else 0.0
    reward_d = abs(tp - entry) if tp else 0.0
    header = (
        f"{'🟢 <b>LONG (BUY)</b>' if buy else '🔴 <b>SHORT (SELL)</b>'} {code(symbol)} #{esc(trade.ticket)}"
    )
    trade_items = [
        f"Entry: {code(price(entry))}",
        f"Lot: {code(f'{lot:g}')}",
        f"SL: {code(price(sl))} ({signed(-risk_d * lot * contract)})"
        if sl
        else "SL: <b>Smart</b> (no broker SL)",
        f"TP: {code(price(tp))} ({signed(reward_d * lot * contract)})" if tp else "TP: —",
        f"R:R: {code(f'1:{reward_d / risk_d:.1f}')}" if risk_d > 0 and reward_d > 0 else "",
        f"Risk: {code(usd(trade.risk_money))}" if trade.risk_money else "",
        f"⏱ <i>{esc(clip(e.data['late']))}</i>" if e.data.get("late") else "",
    ]
    p_up = field(decision, "p_up") if decision is not None else None
    threshold = field(decision, "threshold") if decision is not None else None
    signal_items = []
    if p_up is not None:
        side_p = p_up if buy else 1 - p_up
        signal_items.append(f"ML: {code(pct(side_p))} {esc(side)} / thr {code(pct(threshold))}")
    setup_reason = extra.get("setup") or (field(decision, "setup_reason", "") if decision is not None else "")
    if setup_reason:
        signal_items.insert(0, f"Setup: <i>{esc(clip(setup_reason))}</i>")
    market_items = [
        f"Session: {esc(extra['session'])}" if extra.get("session") else "",
        f"Regime: {code(extra['regime'])}" if extra.get("regime") else "",
    ]
    blocks = [
        section("Trade", trade_items),
        section("Signal", signal_items),
        section("Market", market_items),
    ]
    return compose(header, *blocks, time=e.time)


RULE_ACTORS = frozenset(
    {"exit_rules", "position_manager", "broker", "engine", "backtest", "flash_crash_guard"}
)
STOP_EXITS = frozenset({"broker_sl", "stop_out"})


def first_rule_note(t: Any, contract: float) -> str:
    """A loss closed by a rule before the stop: say which acted first and what the stop would have cost,
    so "-$25.10 by max loss" beside a stop shown as -$25.94 reads as intended, not as a slipped stop."""
    profit, sl = float(t.profit), float(getattr(t, "sl", 0.0) or 0.0)
    if profit >= 0 or not sl or t.reason in STOP_EXITS:
        return ""
    stop_loss = abs(t.open_price - sl) * t.volume * contract
    if stop_loss <= -profit + 0.005:
        return ""
    return (
        f"The {esc(exit_reason_words(t.reason))} rule acted before the stop at {code(price(sl))} "
        f"({esc(signed(-stop_loss))}) was reached"
    )


def trade_closed(e: Event) -> str:
    """data: trade=ClosedTrade, balance_before, balance_after, by. When before/after disagree with the
    trade's P/L (the engine reads the balance after a broker-side close), before = after - P/L."""
    t = e.data["trade"]
    before = e.data.get("balance_before")
    after = e.data.get("balance_after")
    profit = float(t.profit)
    if after is not None and (before is None or abs(after - before - profit) > 0.01):
        # a broker-side close is detected after the account already moved: the balance before the
        # close is the balance after it minus the trade's net P/L
        before = after - profit
    if abs(profit) < 0.005:
        head = "➖ <b>BREAKEVEN</b>"
    elif profit > 0:
        head = "✅ <b>WIN</b>"
    else:
        head = "❌ <b>LOSS</b>"
    header = f"{head} {code(signed(profit))} #{esc(t.ticket)}"
    pct_of_balance = f" ({profit / before:+.2%})" if before else ""
    trade_items = [
        f"{code(t.symbol)} {esc(t.side)} {code(f'{t.volume:g}')}",
        f"Entry → Exit: {code(price(t.open_price))} → {code(price(t.close_price))}",
        f"Pips: {code(f'{pips(t.price_move):+.1f}')}",
        f"P/L: <b>{esc(signed(profit))}</b>{esc(pct_of_balance)}",
        f"Duration: {code(fmt_duration(t.duration_seconds))}",
    ]
    by = str(e.data.get("by") or "")
    detail = (t.extra or {}).get("detail")
    detail = None if not detail or detail == f"closed by {by}" else humanize(detail)
    exit_items = [
        f"Reason: <b>{esc(exit_reason_words(t.reason))}</b>",
        f"<i>{esc(clip(detail))}</i>" if detail else "",
        first_rule_note(t, float(e.data.get("contract_size", CONTRACT_SIZE))),
        f"Closed by {esc(who(by))}" if by and by not in RULE_ACTORS else "",
    ]
    balance_items = []
    if before is not None and after is not None:
        balance_items = [
            f"Before: {code(usd(before))}",
            f"After: {code(usd(after))} ({esc(signed(after - before))})",
        ]
    return compose(
        header,
        section("Trade", trade_items),
        section("Exit", exit_items),
        section("Balance", balance_items),
        time=e.time,
    )


def sl_moved(e: Event) -> str:
    """data: ticket, sl, old_sl, reason."""
    d = e.data
    old = d.get("old_sl")
    move = f"{code(price(old))} → {code(price(d.get('sl')))}" if old else code(price(d.get("sl")))
    return compose(
        f"🛡 <b>SL MOVED</b> #{esc(d.get('ticket'))}",
        section(
            "Stop", [f"SL: {move}", f"<i>{esc(clip(d.get('reason', '')))}</i>" if d.get("reason") else ""]
        ),
        time=e.time,
    )


def order_failed(e: Event) -> str:
    """data: error, ticket (for a close) or decision (for an entry)."""
    d = e.data
    decision = d.get("decision")
    what = f"close #{esc(d['ticket'])}" if d.get("ticket") else "entry"
    if decision is not None and field(decision, "side") is not None:
        lot = float(field(decision, "lot", 0.0) or 0.0)
        what = f"{esc(field(decision, 'side'))} entry, lot {lot:g}"
    return compose(
        f"⚠️ <b>ORDER FAILED</b> ({what})",
        section("Broker", [f"Error: {code(clip(d.get('error', e.text)))}"]),
        time=e.time,
    )


# ---------------------------------------------------------------------------------------- risk


def limit_hit(e: Event) -> str:
    """data: old, new (STOPPED), reason."""
    reason = str(e.data.get("reason", ""))
    total = "total" in reason.lower()
    if total:
        header = "🚨🚨 <b>CRITICAL: TOTAL LOSS LIMIT REACHED</b>"
        after = "⛔ Trading STOPPED until a manual reset is approved in this chat."
    else:
        header = "🚨 <b>DAILY LOSS LIMIT REACHED</b> 🚨"
        after = "⛔ Trading stopped for today; it resumes at 00:00 WIB."
    return compose(
        header,
        section(
            "Risk",
            [f"Mode: {code(e.data.get('old'))} → {code(e.data.get('new'))}", f"Reason: {esc(clip(reason))}"],
        ),
        after + "\nOpen positions are still managed.",
        time=e.time,
    )


def risk_mode_changed(e: Event) -> str:
    """data: old, new, reason."""
    new = str(e.data.get("new", ""))
    return compose(
        f"{MODE_EMOJI.get(new, '⚖️')} <b>RISK MODE</b> {code(e.data.get('old'))} → {code(new)}",
        section("Why", [esc(clip(humanize(e.data.get("reason", ""))))]),
        time=e.time,
    )


def emergency_close(e: Event) -> str:
    """data: reason, closed (count), failed (optional list of tickets still open)."""
    d = e.data
    failed = list(d.get("failed") or [])
    items = [
        f"Closed: {esc(plural(int(d.get('closed', 0)), 'position'))}",
        f"Cause: flash crash, {esc(clip(d.get('reason', '')))}",
    ]
    blocks = [section("Emergency", items), "🧊 Cooldown started: no new entries for a while."]
    if failed:
        blocks.append(
            f"🚨 <b>CLOSE FAILED</b> for {code(', '.join(map(str, failed)))}. Please close manually!"
        )
    return compose("🚨 <b>EMERGENCY CLOSE</b>", *blocks, time=e.time)


def risk_change_applied(e: Event) -> str:
    """data: change=RiskChange, by."""
    change = e.data.get("change")
    return compose(
        "⚙️ <b>RISK CHANGE APPLIED</b>",
        section(
            "Change",
            [esc(clip(field(change, "summary", e.text))), f"By: {esc(who(e.data.get('by')) or '?')}"],
        ),
        time=e.time,
    )


def approval_resolved(e: Event) -> str:
    """data: approval=Approval (approved / rejected / expired)."""
    a = e.data["approval"]
    status = str(field(a, "status", ""))
    icon = {"approved": "✅", "rejected": "❌", "expired": "⌛"}.get(status, "ℹ️")
    items = [
        esc(clip(field(field(a, "change"), "summary", ""))),
        f"Requested by: {esc(who(field(a, 'requested_by')) or '?')}",
        f"{status.capitalize()} by: {esc(who(field(a, 'resolved_by')))}" if field(a, "resolved_by") else "",
    ]
    return compose(f"{icon} <b>APPROVAL {esc(status.upper())}</b>", section("Request", items), time=e.time)


def paused(e: Event) -> str:
    return compose(
        f"⏸ <b>TRADING PAUSED</b> by {esc(who(e.data.get('by')) or '?')}",
        "No new entries; open positions are still managed. /resume to continue.",
        time=e.time,
    )


def resumed(e: Event) -> str:
    return compose(f"▶️ <b>TRADING RESUMED</b> by {esc(who(e.data.get('by')) or '?')}", time=e.time)


# ---------------------------------------------------------------------------------------- dispatch

FORMATTERS: dict[EventKind, Callable[[Event], str]] = {
    EventKind.TRADE_OPENED: trade_opened,
    EventKind.TRADE_CLOSED: trade_closed,
    EventKind.SL_MOVED: sl_moved,
    EventKind.LIMIT_HIT: limit_hit,
    EventKind.EMERGENCY_CLOSE: emergency_close,
    EventKind.RISK_MODE_CHANGED: risk_mode_changed,
    EventKind.RISK_CHANGE_APPLIED: risk_change_applied,
    EventKind.APPROVAL_RESOLVED: approval_resolved,
    EventKind.PAUSED: paused,
    EventKind.RESUMED: resumed,
    EventKind.MODEL_SWAPPED: model_swapped,
    EventKind.ERROR_BURST: error_burst,
    EventKind.NEWS_BLACKOUT: news_blackout,
    EventKind.ORDER_FAILED: order_failed,
    EventKind.JOURNAL: journal,
    EventKind.STARTUP: startup,
    EventKind.SHUTDOWN: shutdown,
    EventKind.INFO: info,
}
NOT_NOTIFIED = frozenset({EventKind.RISK_CHANGE_PROPOSED, EventKind.TRAINING_PROGRESS})
SILENT_BY_DEFAULT = frozenset({EventKind.SL_MOVED, EventKind.INFO})


def answered_on_its_card(event: Event) -> bool:
    """An approval answered with its buttons: the card itself is edited to show who decided
    (handlers/approvals.py), and an applied change has its own message; a second one would repeat it.
    An expiry is still announced (nobody pressed anything)."""
    approval = event.data.get("approval") if event.kind is EventKind.APPROVAL_RESOLVED else None
    status = getattr(getattr(approval, "status", None), "value", None)
    return status in ("approved", "rejected")


def answered_in_chat(event: Event) -> bool:
    """/pause or /resume typed in this very chat: its reply said it (handlers/echo.py)."""
    return event.kind in (EventKind.PAUSED, EventKind.RESUMED) and echo.consume(
        event.kind.value, event.data.get("by")
    )


def render_event(event: Event) -> Rendered | None:
    """(html, silent) for a notification event; None for kinds sent elsewhere. May raise on a
    malformed event (the notifier falls back to `fallback_text`)."""
    formatter = FORMATTERS.get(event.kind)
    if formatter is None or answered_on_its_card(event) or answered_in_chat(event):
        return None
    return Rendered(formatter(event), event.kind in SILENT_BY_DEFAULT)


def fallback_text(event: Event) -> str:
    """Plain one-liner when a formatter failed: the event's own summary, escaped."""
    return compose(
        f"ℹ️ <b>{esc(str(event.kind).upper())}</b>: {esc(clip(event.text or '', 1000))}", time=event.time
    )


__all__ = [
    "FORMATTERS",
    "NOT_NOTIFIED",
    "PIP",
    "SILENT_BY_DEFAULT",
    "Rendered",
    "clock_line",
    "compose",
    "error_burst_event",
    "esc",
    "exit_reason_words",
    "fallback_text",
    "fmt_duration",
    "limits_drift_notes",
    "news_event",
    "pips",
    "plural",
    "render_event",
    "section",
    "shutdown_event",
    "signed",
    "startup_event",
    "usd",
]
