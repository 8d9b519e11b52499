"""One message per action: a command's reply in the chat that also gets the broadcast replaces the broadcast.

`/pause` typed in the notification chat is answered there, and the engine's PAUSED event would then
say the same again. The handler marks the event it is about to cause (`expect`) when its chat is the
notification chat; `bot.messages.render_event` drops one marked event (`consume`). A change that did
not happen publishes nothing, so the handler withdraws its mark (`withdraw`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_expected: Counter[tuple[str, str]] = Counter()


def notify_chat(extras: dict[str, Any]) -> int | None:
    """The chat the notifier writes to (None when notifications are not running)."""
    return getattr(getattr(extras.get("notify"), "notifier", None), "chat_id", None)


def expect(kind: str, by: str) -> None:
    _expected[(kind, by)] += 1


def withdraw(kind: str, by: str) -> None:
    if _expected[(kind, by)] > 0:
        _expected[(kind, by)] -= 1


def consume(kind: str, by: object) -> bool:
    """True (once) when a reply already told this event's chat."""
    key = (kind, str(by))
    if _expected[key] > 0:
        _expected[key] -= 1
        return True
    return False
