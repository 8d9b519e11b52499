"""/notify: the message switches by what a trader calls them; `/notify GROUP|KIND on|silent|off` changes them.

Groups (trades, risk, pause, market, hourly, daily, model, news, bot) cover the internal kinds; a
kind's own name (`trade_closed`, `sl_moved`) still works for a finer switch. Kept across restarts.
"""

from __future__ import annotations

from typing import NamedTuple

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.common import AuditNote, esc, reply, with_clock
from handlers.services import NotifyChat, Services


class Group(NamedTuple):
    label: str
    kinds: tuple[str, ...]
    words: str  # what its messages are, for the listing


GROUPS: dict[str, Group] = {
    "trades": Group(
        "Trades", ("trade_opened", "trade_closed", "order_failed"), "opened, closed, order refused"
    ),
    "stops": Group("Stop moves", ("sl_moved",), "a trailing or break-even stop moved"),
    "risk": Group(
        "Risk",
        ("limit_hit", "emergency_close", "risk_mode_changed", "risk_change_applied", "approval_resolved"),
        "loss limits, emergency close, mode and limit changes",
    ),
    "pause": Group("Pause / resume", ("paused", "resumed"), "entries stopped or allowed again"),
    "market": Group("Market updates", ("market_update",), "every 30 minutes"),
    "hourly": Group("Hourly analyses", ("hourly",), "every hour"),
    "daily": Group("Daily summaries", ("daily",), "with the equity chart"),
    "model": Group("Model", ("model_swapped",), "a retrained model went live"),
    "news": Group("News blackouts", ("news_blackout",), "no entries around high-impact news"),
    "bot": Group(
        "Bot",
        ("startup", "shutdown", "error_burst", "journal", "info"),
        "started, stopped, error bursts, journal alarms, notes",
    ),
}
MARKS = {"on": "🔔", "silent": "🔕", "off": "⛔"}
USAGE = (
    "Usage: /notify · /notify GROUP on|silent|off (e.g. /notify market off) · "
    "a single kind works too (e.g. /notify sl_moved silent)"
)


def group_of(kind: str) -> str | None:
    return next((name for name, g in GROUPS.items() if kind in g.kinds), None)


def group_value(notifier: NotifyChat, group: Group) -> str:
    values = {k: notifier.switch(k) for k in group.kinds}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return "mixed (" + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items()) + ")"


def listing(notifier: NotifyChat) -> str:
    lines = ["🔔 <b>NOTIFICATIONS</b> (on · silent · off)", ""]
    for name, group in GROUPS.items():
        value = group_value(notifier, group)
        skipped = sum(notifier.over_budget.get(k, 0) for k in group.kinds)
        note = f" · {skipped:,} skipped over the chat budget" if skipped else ""
        lines.append(
            f"{MARKS.get(value, '🔀')} <b>{esc(group.label)}</b>: {esc(value)}{note}\n"
            f"   <code>{name}</code> · {esc(group.words)}"
        )
    lines += ["", "Approvals are always sent.", esc(USAGE)]
    return "\n".join(lines)


async def notify(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    control = ctx.notify
    if control is None:
        await reply(message, "Notifications are not running.")
        return
    now = ctx.engine.snapshot().time
    args = (command.args or "").split()
    if not args:
        audit.result = "listed"
        await reply(message, with_clock(listing(control.notifier), now))
        return
    if len(args) != 2:
        audit.result = "usage"
        await reply(message, esc(USAGE))
        return
    name, value = args[0].lower(), args[1].lower()
    group = GROUPS.get(name)
    kinds = group.kinds if group is not None else (name,)
    if value not in MARKS:
        audit.result = "refused"
        await reply(message, f"❌ {esc(args[1])}: use on, silent or off. {esc(USAGE)}")
        return
    try:
        for kind in kinds:
            _, value = await control.set(kind, value)
    except ValueError:
        audit.result = "refused"
        await reply(
            message,
            f"❌ {esc(args[0])} is not a kind of message. Groups: {esc(', '.join(GROUPS))} "
            "(/notify lists them)",
        )
        return
    label = group.label if group is not None else name
    audit.result = f"{name}={value}"
    await reply(message, with_clock(f"✅ {esc(label)}: <b>{esc(value)}</b> (kept across restarts)", now))


def make_router() -> Router:
    return Router(name="notify")
