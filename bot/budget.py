"""A chat's message budget in wall-clock time, shared by the notifier (which skips routine messages over
it) and the courier (which paces every send)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatBudget:
    """How many messages one chat gets, in wall-clock time (Telegram: about one a second per chat)."""

    min_interval: float = 1.0  # seconds between two messages, on average
    burst: int = 3  # messages that may go out back to back before the pace applies
    per_minute: int = 20  # messages in any rolling 60 s
    report_gap: float = 300.0  # seconds between two routine reports of one kind (market update, hourly)
