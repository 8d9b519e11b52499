"""One message per action: a command's reply in the chat that also gets the broadcast replaces the broadcast.

`/pause` typed in the notification chat is answered there, and the engine's PAUSED event would then
say the same again. The handler marks the event it is about to cause (`expect`) when its chat is the
notification chat; `bot.messages.render_event` drops one marked event (`consume`). A change that did
not happen publishes nothing, so the handler withdraws its mark (`withdraw`).
"""

from __future__ import annotations

import time
from collections import Counter

from handlers.services import NotifySwitches

KEEP_SECONDS = 60.0  # a mark the notifier never consumed (its switch off, or it stopped) lapses
_expected: Counter[tuple[str, str]] = Counter()
_marked_at: dict[tuple[str, str], float] = {}


def notify_chat(notify: NotifySwitches | None) -> int | None:
    """The chat the notifier writes to (None when notifications are not running)."""
    return notify.notifier.chat_id if notify is not None else None


def expect(kind: str, by: str) -> None:
    _lapse()
    _expected[(kind, by)] += 1
    _marked_at[(kind, by)] = time.monotonic()


def withdraw(kind: str, by: str) -> None:
    if _expected[(kind, by)] > 0:
        _expected[(kind, by)] -= 1


def consume(kind: str, by: object) -> bool:
    """True (once) when a reply already told this event's chat."""
    _lapse()
    key = (kind, str(by))
    if _expected[key] > 0:
        _expected[key] -= 1
        return True
    return False


def _lapse() -> None:
    now = time.monotonic()
    for key, at in list(_marked_at.items()):
        if now - at > KEEP_SECONDS:
            _expected.pop(key, None)
            del _marked_at[key]
