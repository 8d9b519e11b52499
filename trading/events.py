"""Events the engine publishes, and the bus that carries them without ever blocking the publisher.

The engine calls `bus.publish(event)`, which never awaits: each subscriber owns a bounded
asyncio queue; when a slow subscriber's queue is full the oldest event is dropped for that
subscriber only (and counted), so Telegram can never stall trading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    TRADE_OPENED = "trade_opened"
    TRADE_CLOSED = "trade_closed"
    SL_MOVED = "sl_moved"
    LIMIT_HIT = "limit_hit"
    EMERGENCY_CLOSE = "emergency_close"
    RISK_MODE_CHANGED = "risk_mode_changed"
    RISK_CHANGE_PROPOSED = "risk_change_proposed"
    RISK_CHANGE_APPLIED = "risk_change_applied"
    APPROVAL_RESOLVED = "approval_resolved"
    PAUSED = "paused"
    RESUMED = "resumed"
    MODEL_SWAPPED = "model_swapped"
    TRAINING_PROGRESS = "training_progress"
    ERROR_BURST = "error_burst"
    NEWS_BLACKOUT = "news_blackout"
    ORDER_FAILED = "order_failed"
    JOURNAL = "journal"  # the journal cannot write (alarm) / writes again (recovery)
    STARTUP = "startup"
    SHUTDOWN = "shutdown"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    time: datetime
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # one-line human summary, for logs and the console transport


class EventBus:
    """Fan-out of events to independent subscribers; publish is synchronous and non-blocking."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._queues: list[asyncio.Queue[Event]] = []
        self._callbacks: list[Callable[[Event], None]] = []
        self._maxsize = maxsize
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=self._maxsize)
        self._queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def on(self, callback: Callable[[Event], None]) -> None:
        """Synchronous listener (tests, backtest collectors). Must be fast and must not raise."""
        self._callbacks.append(callback)

    def listened(self) -> bool:
        """Whether an event published now reaches anyone (a subscriber or a listener): a publisher with
        nobody to tell (a backtest's engine) need not build the event."""
        return bool(self._callbacks or self._queues)

    def publish(self, event: Event) -> None:
        for cb in self._callbacks:
            try:
                cb(event)
            except Exception:  # a listener must never break the engine
                log.exception("event listener failed on %s", event.kind)
        for q in self._queues:
            if q.full():
                try:
                    q.get_nowait()
                    self.dropped += 1
                except asyncio.QueueEmpty:
                    pass
            q.put_nowait(event)
