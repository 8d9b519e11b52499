"""The trader's names for what the code calls by id: people, the rules that act, exit reasons.

People: the access middleware remembers each Telegram user's first name (`remember`); a message
then says "Alice" (or "you" when the reader is the one who acted) instead of `tg:1000`. The console
user is always "you". Rules: `exit_rules` is "the exit rules", `flash_crash_guard` "the flash-crash
guard", and so on.
"""

from __future__ import annotations

import re

ACTOR_RE = re.compile(r"\btg:\d+\b")

_names: dict[str, str] = {}  # actor id ("tg:1000") -> first name
_console: set[str] = set()  # actors typing in this terminal: "you"

RULES = {
    "exit_rules": "the exit rules",
    "position_manager": "the position manager",
    "flash_crash_guard": "the flash-crash guard",
    "broker": "the broker",
    "engine": "the bot",
    "console": "the console",
    "backtest": "the backtest",
    "superseded": "a newer request",
    "startup": "start-up",
    "schedule": "the schedule",
    "scheduled": "the schedule",
    "auto": "the bot",
}

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
    "stop_moved": "stop could not be moved",
    "end_of_data": "end of the data",
}


def remember(actor: str, first_name: str) -> None:
    if first_name and actor not in _console:
        _names[actor] = first_name


def forget_all() -> None:
    """Forget every remembered name and console actor (a new app in the same process starts clean)."""
    _names.clear()
    _console.clear()


def console_actor(actor: str) -> None:
    """The actor typing at this terminal: always "you"."""
    _console.add(actor)
    _names.pop(actor, None)


def who(by: object, reader: str | None = None) -> str:
    """A person or a rule as the trader says it: "you", "Alice", "the exit rules"; "" for nobody."""
    if by is None or by == "":
        return ""
    text = str(by)
    if text == reader or text in _console:
        return "you"
    if text in _names:
        return _names[text]
    if text in RULES:
        return RULES[text]
    if text.startswith("tg:"):
        return "a chat user"  # never seen in this run (e.g. a change kept from before a restart)
    return text.replace("_", " ")


def humanize(text: object) -> str:
    """A free-text reason with every actor id said as a name: "closed by tg:1000" -> "closed by Alice"."""
    return ACTOR_RE.sub(lambda m: who(m.group(0)), "" if text is None else str(text))


def exit_reason_words(name: str) -> str:
    return EXIT_REASONS.get(name, name.replace("_", " "))
