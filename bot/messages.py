"""Notification texts: pure functions from an engine `Event` to Telegram HTML (spec §1.1).

`render_event(event)` returns `(html, silent)` or None for kinds that are not notifications here
(RISK_CHANGE_PROPOSED: the approval message with buttons belongs to handlers/approvals.py;
TRAINING_PROGRESS: /retrain edits its own message). Layout as in the original: a header line,
sections of `├ ` / `└ ` items under a bold title, blank lines between sections, and a
`⏰ HH:MM WIB` clock line (with the date on startup and shutdown) taken from the event's time.
Every dynamic string goes through `esc` (html.escape), so a reason containing "<b>" arrives as text.

Events the app (not the engine) publishes have builders here that fix their data fields:
`startup_event`, `shutdown_event`, `news_event`, `error_burst_event`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from handlers.clock import market_clock_line
from trading.events import Event, EventKind
from trading.timezones import fmt_wib

log = logging.getLogger(__name__)

PIP = 0.1  # XAUUSD pip as the original counts it: $0.10 of price
CONTRACT_SIZE = 100.0  # ounces per lot, for potential loss/profit when the event does not say
DEFAULT_SYMBOL = "XAUUSD"
MAX_REASON = 200  # characters of a free-text reason kept in a message

MODE_EMOJI = {"NORMAL": "🟢", "RECOVERY": "🟠", "PROTECTED": "🟡", "COOLDOWN": "🧊", "STOPPED": "🔴"}

EXIT_REASONS = {
    "smart_take_profit": "smart take-profit",
    "early_exit": "early exit (small profit reversing)",
    "early_cut": "early cut (loss with momentum against)",
    "ml_reversal": "ML reversal",
    "max_loss": "max loss per trade",
    "stall": "stalled in loss",
    "daily_limit": "daily loss limit",
    "weekend": "weekend close",
    "time_limit": "time limit",
    "market_close": "before the market close",
    "regime_danger": "dangerous volatility regime",
    "opposite_signal": "opposite ML signal",
    "peak_drawdown": "gave back profit from the peak",
    "urgency": "exit urgency",
    "manual": "closed by hand",
    "close_all": "close all",
    "flash_crash": "flash crash guard",
    "broker": "closed at the broker",
    "broker_sl": "stop-loss hit at the broker",
    "broker_tp": "take-profit hit at the broker",
    "stop_out": "margin stop-out",
}


class Rendered(NamedTuple):
    html: str
    silent: bool = False


# ---------------------------------------------------------------------------------------- helpers


def esc(value: object) -> str:
    """HTML-escape any value for Telegram (None -> "—")."""
    return "—" if value is None else html.escape(str(value))


def clip(text: object, limit: int = MAX_REASON) -> str:
    """Shorten a free-text value before escaping (so an entity is never cut in half)."""
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def money(x: float | None) -> str:
    """Signed dollars: +$1,234.56 / -$12.00."""
    if x is None:
        return "—"
    return f"{'-' if x < 0 else '+'}${abs(x):,.2f}"


def usd(x: float | None) -> str:
    return "—" if x is None else f"${x:,.2f}"


def price(x: float | None) -> str:
    return "—" if x is None or x == 0 else f"{x:,.2f}"


def pct(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:.{digits}%}"


def code(text: object) -> str:
    return f"<code>{esc(text)}</code>"


def section(title: str, items: Sequence[str]) -> str:
    """Bold title, then one `├ ` line per item and `└ ` on the last; "" when there are no items."""
    items = [i for i in items if i]
    if not items:
        return ""
    lines = [f"<b>{title}</b>"]
    lines += [("└ " if n == len(items) - 1 else "├ ") + item for n, item in enumerate(items)]
    return "\n".join(lines)


def clock_line(t: datetime, with_date: bool = False) -> str:
    """The one clock of a message: the market's, labelled when it is a replay (handlers.clock)."""
    return esc(market_clock_line(t, with_date))


def compose(header: str, *blocks: str, time: datetime, with_date: bool = False) -> str:
    """Header, the non-empty blocks separated by blank lines, then the clock line."""
    parts = [header, *[b for b in blocks if b], clock_line(time, with_date)]
    return "\n\n".join(parts)


def fmt_duration(seconds: float) -> str:
    """`45s`, `12m`, `3h 05m`, `2d 04h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def pips(price_move: float) -> float:
    """Signed price distance in pips, 1 pip = $0.10 of price (the original's XAUUSD convention:
    2,345.60 -> 2,345.70 is one pip, so a $1.00 move is 10 pips)."""
    return price_move / PIP


def exit_reason_words(name: str) -> str:
    return EXIT_REASONS.get(name, name.replace("_", " "))


def _get(obj: object, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


# ---------------------------------------------------------------------------------------- trades


def trade_opened(e: Event) -> str:
    """data: trade=OpenedTrade, decision=Decision (optional), symbol, contract_size (optional)."""
    trade = e.data["trade"]
    decision = e.data.get("decision")
    extra: Mapping[str, Any] = _get(trade, "extra", {}) or {}
    side = str(_get(trade, "side"))
    buy = side == "BUY"
    symbol = e.data.get("symbol", DEFAULT_SYMBOL)
    contract = float(e.data.get("contract_size", CONTRACT_SIZE))
    entry, sl, tp, lot = trade.open_price, trade.sl, trade.tp, trade.volume
    risk_d = abs(entry - sl) if sl else 0.0
    reward_d = abs(tp - entry) if tp else 0.0
    header = f"{'🟢 <b>LONG (BUY)</b>' if buy else '🔴 <b>SHORT (SELL)</b>'} {code(symbol)} #{esc(trade.ticket)}"
    trade_items = [
        f"Entry: {code(price(entry))}",
        f"Lot: {code(f'{lot:g}')}",
        f"SL: {code(price(sl))} ({money(-risk_d * lot * contract)})" if sl else "SL: <b>Smart</b> (no broker SL)",
        f"TP: {code(price(tp))} ({money(reward_d * lot * contract)})" if tp else "TP: —",
        f"R:R: {code(f'1:{reward_d / risk_d:.1f}')}" if risk_d > 0 and reward_d > 0 else "",
        f"Risk: {code(usd(trade.risk_money))}" if trade.risk_money else "",
        f"⏱ <i>{esc(clip(e.data['late']))}</i>" if e.data.get("late") else "",
    ]
    p_up = _get(decision, "p_up") if decision is not None else None
    threshold = _get(decision, "threshold") if decision is not None else None
    signal_items = []
    if p_up is not None:
        side_p = p_up if buy else 1 - p_up
        signal_items.append(f"ML: {code(pct(side_p))} {esc(side)} / thr {code(pct(threshold))}")
    setup_reason = extra.get("setup") or (_get(decision, "setup_reason", "") if decision is not None else "")
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
    header = f"{head} {code(money(profit))} #{esc(t.ticket)}"
    pct_of_balance = f" ({profit / before:+.2%})" if before else ""
    trade_items = [
        f"{code(t.symbol)} {esc(t.side)} {code(f'{t.volume:g}')}",
        f"Entry → Exit: {code(price(t.open_price))} → {code(price(t.close_price))}",
        f"Pips: {code(f'{pips(t.price_move):+.1f}')}",
        f"P/L: <b>{esc(money(profit))}</b>{esc(pct_of_balance)}",
        f"Duration: {code(fmt_duration(t.duration_seconds))}",
    ]
    detail = (t.extra or {}).get("detail")
    exit_items = [
        f"Reason: <b>{esc(exit_reason_words(t.reason))}</b>",
        f"<i>{esc(clip(detail))}</i>" if detail else "",
        f"By: {esc(e.data['by'])}" if e.data.get("by") else "",
    ]
    balance_items = []
    if before is not None and after is not None:
        balance_items = [f"Before: {code(usd(before))}", f"After: {code(usd(after))} ({esc(money(after - before))})"]
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
        section("Stop", [f"SL: {move}", f"<i>{esc(clip(d.get('reason', '')))}</i>" if d.get("reason") else ""]),
        time=e.time,
    )


def order_failed(e: Event) -> str:
    """data: error, ticket (for a close) or decision (for an entry)."""
    d = e.data
    decision = d.get("decision")
    what = f"close #{esc(d['ticket'])}" if d.get("ticket") else "entry"
    if decision is not None and _get(decision, "side") is not None:
        lot = float(_get(decision, "lot", 0.0) or 0.0)
        what = f"{esc(_get(decision, 'side'))} entry, lot {lot:g}"
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
        section("Risk", [f"Mode: {code(e.data.get('old'))} → {code(e.data.get('new'))}",
                         f"Reason: {esc(clip(reason))}"]),
        after + "\nOpen positions are still managed.",
        time=e.time,
    )


def risk_mode_changed(e: Event) -> str:
    """data: old, new, reason."""
    new = str(e.data.get("new", ""))
    return compose(
        f"{MODE_EMOJI.get(new, '⚖️')} <b>RISK MODE</b> {code(e.data.get('old'))} → {code(new)}",
        section("Why", [esc(clip(e.data.get("reason", "")))]),
        time=e.time,
    )


def emergency_close(e: Event) -> str:
    """data: reason, closed (count), failed (optional list of tickets still open)."""
    d = e.data
    failed = list(d.get("failed") or [])
    items = [f"Closed: {code(d.get('closed', 0))} position(s)", f"Cause: flash crash, {esc(clip(d.get('reason', '')))}"]
    blocks = [section("Emergency", items), "🧊 Cooldown started: no new entries for a while."]
    if failed:
        blocks.append(f"🚨 <b>CLOSE FAILED</b> for {code(', '.join(map(str, failed)))}. Please close manually!")
    return compose("🚨 <b>EMERGENCY CLOSE</b>", *blocks, time=e.time)


def risk_change_applied(e: Event) -> str:
    """data: change=RiskChange, by."""
    change = e.data.get("change")
    return compose(
        "⚙️ <b>RISK CHANGE APPLIED</b>",
        section("Change", [esc(clip(_get(change, "summary", e.text))), f"By: {esc(e.data.get('by', '?'))}"]),
        time=e.time,
    )


def approval_resolved(e: Event) -> str:
    """data: approval=Approval (approved / rejected / expired)."""
    a = e.data["approval"]
    status = str(_get(a, "status", ""))
    icon = {"approved": "✅", "rejected": "❌", "expired": "⌛"}.get(status, "ℹ️")
    items = [
        esc(clip(_get(_get(a, "change"), "summary", ""))),
        f"Requested by: {esc(_get(a, 'requested_by', '?'))}",
        f"{status.capitalize()} by: {esc(_get(a, 'resolved_by'))}" if _get(a, "resolved_by") else "",
    ]
    return compose(f"{icon} <b>APPROVAL {esc(status.upper())}</b>", section("Request", items), time=e.time)


def paused(e: Event) -> str:
    return compose(f"⏸ <b>TRADING PAUSED</b> by {esc(e.data.get('by', '?'))}",
                   "No new entries; open positions are still managed. /resume to continue.", time=e.time)


def resumed(e: Event) -> str:
    return compose(f"▶️ <b>TRADING RESUMED</b> by {esc(e.data.get('by', '?'))}", time=e.time)


# ---------------------------------------------------------------------------------------- system

_METRICS = (("auc", "AUC", "{:.3f}"), ("holdout_auc", "Holdout AUC", "{:.3f}"), ("accuracy", "Accuracy", "{:.1%}"),
            ("log_loss", "Log loss", "{:.3f}"), ("brier", "Brier", "{:.3f}"))


def _metric(metrics: Mapping[str, Any], key: str, fmt: str) -> str:
    value = metrics.get(key)
    try:
        return fmt.format(float(value)) if value is not None else "—"
    except (TypeError, ValueError):
        return str(value)


def model_swapped(e: Event) -> str:
    """data: trigger, by, old_version, new_version, old_metrics, new_metrics (models.autotrainer)."""
    d = e.data
    old_m: Mapping[str, Any] = d.get("old_metrics") or {}
    new_m: Mapping[str, Any] = d.get("new_metrics") or {}
    rows = [
        f"{label}: {code(_metric(old_m, key, fmt))} → {code(_metric(new_m, key, fmt))}"
        for key, label, fmt in _METRICS
        if key in old_m or key in new_m
    ]
    return compose(
        f"🔄 <b>MODEL SWAPPED</b> {code(d.get('old_version') or '—')} → {code(d.get('new_version'))}",
        section("Metrics (old → new)", rows),
        section("Why", [f"Trigger: {esc(d.get('trigger', '?'))}", f"By: {esc(d.get('by', '?'))}"]),
        time=e.time,
    )


def error_burst(e: Event) -> str:
    """data: count, window_seconds, threshold, last_error (see `error_burst_event`)."""
    d = e.data
    minutes = float(d.get("window_seconds", 300)) / 60
    return compose(
        "⚠️ <b>ERROR BURST</b>",
        section("Errors", [f"{code(d.get('count', '?'))} errors in {code(f'{minutes:g} min')}",
                           f"Last: {code(clip(d.get('last_error', '')))}"]),
        "The loop keeps running. No further error alert until the errors stop for "
        f"{esc(f'{minutes:g}')} min.",
        time=e.time,
    )


def journal(e: Event) -> str:
    """data: ok, path, error and since (the alarm) or booked and down_seconds (the recovery)."""
    d = e.data
    if not d.get("ok"):
        return compose(
            "🛑 <b>JOURNAL CANNOT WRITE</b>: no new entries",
            section("Journal", [f"File: {code(d.get('path'))}", f"Error: {code(clip(d.get('error')))}"]),
            "Open positions keep their broker stops; their closes are kept in memory and booked (then "
            "announced) when the journal writes again. Entries resume by themselves then.",
            time=e.time,
        )
    booked = [esc(clip(b, 80)) for b in d.get("booked") or ()]
    return compose(
        f"✅ <b>JOURNAL WRITES AGAIN</b> after {code(fmt_duration(d.get('down_seconds', 0)))}",
        section("Booked from memory", booked or ["nothing was waiting"]),
        "New entries are allowed again.",
        time=e.time,
    )


def news_blackout(e: Event) -> str:
    """data: active, title, reason, until (datetime | None), buffer_minutes (see `news_event`)."""
    d = e.data
    active = bool(d.get("active", True))
    items = [
        f"Event: {esc(clip(d.get('title'), 40))}" if d.get("title") else "",
        f"Reason: {esc(clip(d.get('reason'), 80))}" if d.get("reason") else "",
        f"Until: {code(fmt_wib(d['until']))}" if active and isinstance(d.get("until"), datetime) else "",
        f"Buffer: {code(d.get('buffer_minutes'))} min" if d.get("buffer_minutes") is not None else "",
    ]
    header = "📰 <b>NEWS BLACKOUT</b>: no new entries" if active else "✅ <b>NEWS BLACKOUT OVER</b>"
    return compose(header, section("News", items), time=e.time)


def _pct_value(limits: object, name: str) -> str:
    return f"{float(_get(limits, name, 0.0)):g}%"


def _lot_band(limits: object) -> str:
    return f"{float(_get(limits, 'min_lot', 0.0)):g}–{float(_get(limits, 'max_lot', 0.0)):g}"


LIMIT_LABELS = {"risk_per_trade_pct": ("risk/trade", "%"), "daily_loss_pct": ("daily loss limit", "%"),
                "total_loss_pct": ("total loss limit", "%"), "max_positions": ("max positions", ""),
                "min_lot": ("min lot", ""), "max_lot": ("max lot", "")}


def limits_drift_notes(live: Any, configured: Any) -> list[str]:
    """One note per limit the engine runs with that differs from the settings (an approved change
    is kept across restarts): the start-up message shows the live figure and says where it came from."""
    notes = []
    for name, (label, unit) in LIMIT_LABELS.items():
        now, setting = _get(live, name), _get(configured, name)
        if now is not None and setting is not None and now != setting:
            notes.append(f"{label} is {now:g}{unit}, changed in the chat and kept (the setting says {setting:g}{unit})")
    return notes


def startup(e: Event) -> str:
    """data: config (ordered label -> value), balance, equity, currency, limits (RiskLimits), mode,
    paused, notes (reconcile lines and the like). See `startup_event`."""
    d = e.data
    config: Mapping[str, Any] = d.get("config") or {}
    config_items = [f"{esc(k)}: {code(v)}" for k, v in config.items()]
    config_items.append(f"Balance: {code(usd(d.get('balance')))} {esc(d.get('currency', ''))}".rstrip())
    if d.get("equity") is not None:
        config_items.append(f"Equity: {code(usd(d['equity']))}")
    limits = d.get("limits")
    risk_items = []
    if limits is not None:
        risk_items = [
            f"Risk/Trade: {code(_pct_value(limits, 'risk_per_trade_pct'))}",
            f"Max Daily Loss: {code(_pct_value(limits, 'daily_loss_pct'))}",
            f"Max Total Loss: {code(_pct_value(limits, 'total_loss_pct'))}",
            f"Lot: {code(_lot_band(limits))}",
            f"Max Positions: {code(_get(limits, 'max_positions'))}",
            f"Cooldown after a limit: {code(str(_get(limits, 'cooldown_minutes')) + ' min')}",
        ]
    state_items = [
        f"Mode: {code(d.get('mode', 'NORMAL'))}",
        "⏸ Paused (send /resume)" if d.get("paused") else "",
    ]
    notes = [esc(clip(n)) for n in d.get("notes") or ()]
    return compose(
        "🚀 <b>BOT STARTED</b>",
        section("Config", config_items),
        section("Risk Settings", risk_items),
        section("Risk State", state_items),
        section("Notes", notes),
        time=e.time,
        with_date=True,
    )


def shutdown(e: Event) -> str:
    """data: balance, trades_today, wins_today, profit_today, uptime_seconds, mode, reason."""
    d = e.data
    profit = d.get("profit_today")
    items = [
        f"Balance: {code(usd(d.get('balance')))}",
        f"Trades today: {code(d.get('trades_today', 0))}"
        + (f" ({esc(d['wins_today'])} won)" if d.get("wins_today") is not None else ""),
        f"{'✅' if (profit or 0) >= 0 else '❌'} P/L today: {code(money(profit))}" if profit is not None else "",
        f"Uptime: {code(fmt_duration(d.get('uptime_seconds', 0)))}",
        f"Mode: {code(d['mode'])}" if d.get("mode") else "",
        f"Reason: {esc(clip(d['reason']))}" if d.get("reason") else "",
    ]
    return compose("🔴 <b>BOT STOPPED</b>", section("Session Summary", items), time=e.time, with_date=True)


def info(e: Event) -> str:
    return compose(f"ℹ️ {esc(clip(e.text or e.data.get('text', ''), 1000))}", time=e.time)


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


def render_event(event: Event) -> Rendered | None:
    """(html, silent) for a notification event; None for kinds sent elsewhere. May raise on a
    malformed event (the notifier falls back to `fallback_text`)."""
    formatter = FORMATTERS.get(event.kind)
    if formatter is None or answered_on_its_card(event):
        return None
    return Rendered(formatter(event), event.kind in SILENT_BY_DEFAULT)


def fallback_text(event: Event) -> str:
    """Plain one-liner when a formatter failed: the event's own summary, escaped."""
    return compose(f"ℹ️ <b>{esc(str(event.kind).upper())}</b>: {esc(clip(event.text or '', 1000))}", time=event.time)


# ---------------------------------------------------------------------------------------- app events


def startup_event(
    time: datetime,
    *,
    balance: float,
    config: Mapping[str, object] | None = None,
    equity: float | None = None,
    currency: str = "USD",
    limits: object | None = None,
    mode: str = "NORMAL",
    paused: bool = False,
    notes: Iterable[str] = (),
) -> Event:
    """The start-up message's event; config is shown in order (Symbol, Broker, Model, Session, ...)."""
    return Event(
        EventKind.STARTUP, time,
        {"config": dict(config or {}), "balance": balance, "equity": equity, "currency": currency,
         "limits": limits, "mode": mode, "paused": paused, "notes": list(notes)},
        f"bot started, balance {balance:,.2f}",
    )


def shutdown_event(
    time: datetime,
    *,
    balance: float | None,
    started: datetime,
    trades_today: int = 0,
    wins_today: int | None = None,
    profit_today: float | None = None,
    mode: str = "",
    reason: str = "",
    now_wall: datetime | None = None,
) -> Event:
    """`time` is the market's (the clock line); uptime is `now_wall - started`, both wall time (when
    `now_wall` is not given, `time` is taken as wall time too)."""
    uptime = ((now_wall or time) - started).total_seconds()
    return Event(
        EventKind.SHUTDOWN, time,
        {"balance": balance, "trades_today": trades_today, "wins_today": wins_today, "profit_today": profit_today,
         "uptime_seconds": uptime, "mode": mode, "reason": reason},
        f"bot stopped ({reason or 'shutdown'})",
    )


def news_event(
    time: datetime,
    *,
    active: bool,
    title: str = "",
    reason: str = "",
    until: datetime | None = None,
    buffer_minutes: int | None = None,
) -> Event:
    text = f"news blackout {'on' if active else 'over'}: {title or reason}"
    return Event(EventKind.NEWS_BLACKOUT, time, {"active": active, "title": title, "reason": reason,
                                                 "until": until, "buffer_minutes": buffer_minutes}, text)


def error_burst_event(time: datetime, *, count: int, window: timedelta, threshold: int, last_error: str) -> Event:
    return Event(
        EventKind.ERROR_BURST, time,
        {"count": count, "window_seconds": window.total_seconds(), "threshold": threshold, "last_error": last_error},
        f"{count} errors in {window.total_seconds() / 60:g} min; last: {last_error}",
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
    "money",
    "news_event",
    "pips",
    "render_event",
    "section",
    "shutdown_event",
    "startup_event",
    "usd",
]
