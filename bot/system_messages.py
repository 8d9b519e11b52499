"""Notification texts of the bot itself (not its trades): start-up, shutdown, model swaps, error bursts,
news blackouts, info; and the builders of the events the app (not the engine) publishes:
`startup_event`, `shutdown_event`, `news_event`, `error_burst_event`. Same layout as bot.messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from handlers.fmt import clip, code, compose, esc, field, fmt_duration, section, signed, usd
from handlers.names import who
from trading.events import Event, EventKind
from trading.timezones import fmt_wib

_METRICS = (
    ("auc", "AUC", "{:.3f}"),
    ("holdout_auc", "Holdout AUC", "{:.3f}"),
    ("accuracy", "Accuracy", "{:.1%}"),
    ("log_loss", "Log loss", "{:.3f}"),
    ("brier", "Brier", "{:.3f}"),
)


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
        section("Why", [f"Trigger: {esc(d.get('trigger', '?'))}", f"By: {esc(who(d.get('by')) or '?')}"]),
        time=e.time,
    )


def error_burst(e: Event) -> str:
    """data: count, window_seconds, threshold, last_error (see `error_burst_event`)."""
    d = e.data
    minutes = float(d.get("window_seconds", 300)) / 60
    return compose(
        "⚠️ <b>ERROR BURST</b>",
        section(
            "Errors",
            [
                f"{code(d.get('count', '?'))} errors in {code(f'{minutes:g} min')}",
                f"Last: {code(clip(d.get('last_error', '')))}",
            ],
        ),
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
    return f"{float(field(limits, name, 0.0)):g}%"


def _lot_band(limits: object) -> str:
    return f"{float(field(limits, 'min_lot', 0.0)):g}–{float(field(limits, 'max_lot', 0.0)):g}"


LIMIT_LABELS = {
    "risk_per_trade_pct": ("risk/trade", "%"),
    "daily_loss_pct": ("daily loss limit", "%"),
    "total_loss_pct": ("total loss limit", "%"),
    "max_positions": ("max positions", ""),
    "min_lot": ("min lot", ""),
    "max_lot": ("max lot", ""),
}


def limits_drift_notes(live: Any, configured: Any) -> list[str]:
    """One note per limit the engine runs with that differs from the settings (an approved change
    is kept across restarts): the start-up message shows the live figure and says where it came from."""
    notes = []
    for name, (label, unit) in LIMIT_LABELS.items():
        now, setting = field(live, name), field(configured, name)
        if now is not None and setting is not None and now != setting:
            notes.append(
                f"{label} is {now:g}{unit}, changed in the chat and kept (the setting says {setting:g}{unit})"
            )
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
            f"Max Positions: {code(field(limits, 'max_positions'))}",
            f"Cooldown after a limit: {code(str(field(limits, 'cooldown_minutes')) + ' min')}",
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
        f"{'✅' if (profit or 0) >= 0 else '❌'} P/L today: {code(signed(profit))}"
        if profit is not None
        else "",
        f"Uptime: {code(fmt_duration(d.get('uptime_seconds', 0)))}",
        f"Mode: {code(d['mode'])}" if d.get("mode") else "",
        f"Reason: {esc(clip(d['reason']))}" if d.get("reason") else "",
    ]
    return compose("🔴 <b>BOT STOPPED</b>", section("Session Summary", items), time=e.time, with_date=True)


def info(e: Event) -> str:
    return compose(f"ℹ️ {esc(clip(e.text or e.data.get('text', ''), 1000))}", time=e.time)


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
        EventKind.STARTUP,
        time,
        {
            "config": dict(config or {}),
            "balance": balance,
            "equity": equity,
            "currency": currency,
            "limits": limits,
            "mode": mode,
            "paused": paused,
            "notes": list(notes),
        },
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
        EventKind.SHUTDOWN,
        time,
        {
            "balance": balance,
            "trades_today": trades_today,
            "wins_today": wins_today,
            "profit_today": profit_today,
            "uptime_seconds": uptime,
            "mode": mode,
            "reason": reason,
        },
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
    return Event(
        EventKind.NEWS_BLACKOUT,
        time,
        {
            "active": active,
            "title": title,
            "reason": reason,
            "until": until,
            "buffer_minutes": buffer_minutes,
        },
        text,
    )


def error_burst_event(
    time: datetime, *, count: int, window: timedelta, threshold: int, last_error: str
) -> Event:
    return Event(
        EventKind.ERROR_BURST,
        time,
        {
            "count": count,
            "window_seconds": window.total_seconds(),
            "threshold": threshold,
            "last_error": last_error,
        },
        f"{count} errors in {window.total_seconds() / 60:g} min; last: {last_error}",
    )
