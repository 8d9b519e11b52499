"""What must reach the chat, and the one catch-up message that stands for a pile of them.

Must-deliver kinds (trades, limits, approvals, errors, pause/resume, start/stop) go through the
persistent outbox. When more than `SUMMARY_OVER` of them piled up during an outage (or were left
from before a restart), they go out as one summary that names every ticket and the net P/L of the
closes, lists the other messages by their headline, and ends with the newest state.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.transport import html_to_text
from trading.events import Event, EventKind
from trading.numbers import signed_usd, usd
from trading.timezones import to_wib

MUST_DELIVER = frozenset(
    {
        EventKind.TRADE_OPENED,
        EventKind.TRADE_CLOSED,
        EventKind.ORDER_FAILED,  # trades
        EventKind.LIMIT_HIT,
        EventKind.EMERGENCY_CLOSE,
        EventKind.RISK_MODE_CHANGED,  # limits
        EventKind.RISK_CHANGE_APPLIED,
        EventKind.APPROVAL_RESOLVED,  # approvals
        EventKind.ERROR_BURST,
        EventKind.JOURNAL,  # errors (a journal alarm is kept in memory while the journal is down)
        EventKind.PAUSED,
        EventKind.RESUMED,
        EventKind.STARTUP,
        EventKind.SHUTDOWN,  # start/stop
    }
)
SUMMARY_OVER = 5  # up to this many waiting messages go out one by one after an outage; more: one summary


@dataclass(frozen=True, slots=True)
class Waiting:
    """One undelivered message as the summary sees it."""

    kind: str
    html: str
    created_at: datetime  # wall time it was queued (UTC)
    meta: dict[str, Any]


def must_deliver(kind: str) -> bool:
    return kind in MUST_DELIVER


def event_meta(event: Event) -> dict[str, Any]:
    """The facts a summary needs from a trade event: ticket, side, and the net P/L of a close
    ({} for other kinds, and for a malformed event: its message still goes, the summary knows less)."""
    try:
        return _trade_meta(event)
    except Exception:
        return {}


def _trade_meta(event: Event) -> dict[str, Any]:
    trade = event.data.get("trade") if isinstance(event.data, dict) else None
    ticket = getattr(trade, "ticket", None)
    if event.kind not in (EventKind.TRADE_OPENED, EventKind.TRADE_CLOSED) or not isinstance(ticket, int):
        return {}
    meta: dict[str, Any] = {"ticket": ticket, "side": str(getattr(trade, "side", ""))}
    profit = getattr(trade, "profit", None)
    if event.kind is EventKind.TRADE_CLOSED and isinstance(profit, int | float):
        meta["profit"] = float(profit)
    return meta


def headline(message_html: str) -> str:
    """The first non-empty line of a message, as plain text."""
    for line in html_to_text(message_html).splitlines():
        if line.strip():
            return line.strip()
    return ""


ROUTINE_LABELS = {
    "sl_moved": "SL moves",
    "market_update": "market updates",
    "hourly": "hourly analyses",
    "training_progress": "training progress reports",
}


def summary_html(
    waiting: Sequence[Waiting], state: str = "", skipped: Mapping[str, int] | None = None
) -> str:
    """📬 While Telegram was unreachable (12:01–12:03 WIB): opened #18 #22, closed #10 (+$5.20) …
    `skipped`: routine messages of the same time left out by kind (the state line tells the newer)."""
    if not waiting:
        return ""
    first, last = to_wib(min(w.created_at for w in waiting)), to_wib(max(w.created_at for w in waiting))
    span = (
        f"{first:%H:%M}–{last:%H:%M} WIB"
        if first.date() == last.date()
        else f"{first:%d %b %H:%M} – {last:%d %b %H:%M} WIB"
    )
    lines = [f"📬 <b>While Telegram was unreachable</b> ({span}), {len(waiting)} messages waited:"]
    opened = [w.meta["ticket"] for w in waiting if w.kind == EventKind.TRADE_OPENED and "ticket" in w.meta]
    closed = [w for w in waiting if w.kind == EventKind.TRADE_CLOSED and "ticket" in w.meta]
    if opened:
        lines.append("🟢 Opened: " + " ".join(f"#{t}" for t in opened))
    if closed:
        lines.append(
            "🏁 Closed: "
            + " ".join(
                f"#{w.meta['ticket']}" + (f" ({signed_usd(w.meta['profit'])})" if "profit" in w.meta else "")
                for w in closed
            )
        )
        profits = [w.meta["profit"] for w in closed if "profit" in w.meta]
        if profits:
            lines.append(f"Net of these closes: <b>{signed_usd(round(sum(profits), 2))}</b>")
    summarised = {
        id(w)
        for w in waiting
        if w.kind in (EventKind.TRADE_OPENED, EventKind.TRADE_CLOSED) and "ticket" in w.meta
    }
    others = [headline(w.html) for w in waiting if id(w) not in summarised]
    if others:
        lines.append("Also: " + "; ".join(html.escape(h) for h in others if h))
    left_out = [f"{n} {ROUTINE_LABELS.get(kind, kind)}" for kind, n in sorted((skipped or {}).items()) if n]
    if left_out:
        lines.append("Left out as out of date: " + ", ".join(left_out))
    if state:
        lines.append(state)
    lines.append("Details: /trades, /positions, /status")
    return "\n".join(lines)


def state_line(snapshot: Any) -> str:
    """The newest state after a catch-up: open positions, balance and equity, paused or not
    (an EngineSnapshot; duck-typed so this module needs no engine)."""
    positions = list(getattr(snapshot, "positions", ()) or ())
    held = ", ".join(f"#{p.ticket} {p.side} {p.volume:g}" for p in positions[:8])
    held += f" and {len(positions) - 8} more" if len(positions) > 8 else ""
    parts = [f"{len(positions)} open" + (f" ({held})" if held else "")]
    account = getattr(snapshot, "account", None)
    if account is not None:
        parts.append(f"balance {usd(account.balance)}, equity {usd(account.equity)}")
    if getattr(snapshot, "paused", False):
        parts.append("entries paused")
    return "📊 <b>Now:</b> " + html.escape("; ".join(parts))


__all__ = [
    "MUST_DELIVER",
    "SUMMARY_OVER",
    "Waiting",
    "event_meta",
    "headline",
    "must_deliver",
    "state_line",
    "summary_html",
]
