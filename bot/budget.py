"""A chat's message budget in wall-clock time, shared by the notifier (which skips routine messages over
it) and the courier (which paces every send through the `Pacer`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatBudget:
    """How many messages one chat gets, in wall-clock time (Telegram: about one a second per chat)."""

    min_interval: float = 1.0  # seconds between two messages, on average
    burst: int = 3  # messages that may go out back to back before the pace applies
    per_minute: int = 20  # messages in any rolling 60 s
    report_gap: float = 300.0  # seconds between two routine reports of one kind (market update, hourly)


class Pacer:
    """The chat budget in wall time: a token bucket (burst, then one per min_interval) for every
    message, and at most per_minute in a rolling minute for all but must-deliver messages."""

    def __init__(
        self,
        budget: ChatBudget | None,
        wall_clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.budget = budget
        self.wall_clock, self._sleep = wall_clock, sleep
        self.draining = False  # at stop(): no pacing (the transport handles a 429)
        self._tokens = float(budget.burst) if budget else 0.0
        self._tokens_at = wall_clock()
        self.sent_at: deque[float] = deque()  # wall times of the sends in the last minute

    def forget(self, now: float) -> None:
        while self.sent_at and now - self.sent_at[0] >= 60.0:
            self.sent_at.popleft()

    def minute_full(self) -> bool:
        if self.budget is None:
            return False
        self.forget(self.wall_clock())
        return len(self.sent_at) >= self.budget.per_minute

    def minute_wait(self) -> float:
        """Seconds until the rolling minute has room again."""
        if self.budget is None or len(self.sent_at) < self.budget.per_minute:
            return 0.0
        return max(self.sent_at[0] + 60.0 - self.wall_clock(), 0.0)

    def _refill(self, budget: ChatBudget, now: float, rate: float) -> None:
        self._tokens = min(float(budget.burst), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now

    async def wait(self, must: bool) -> None:
        """Sleep until the chat may get the next message and take its token."""
        if self.budget is None or self.draining:
            return
        b, now = self.budget, self.wall_clock()
        self.forget(now)
        rate = 1.0 / b.min_interval if b.min_interval > 0 else float("inf")
        self._refill(b, now, rate)
        wait = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / rate
        if not must and len(self.sent_at) >= b.per_minute:
            wait = max(wait, self.sent_at[0] + 60.0 - now)
        if wait > 0:
            await self._sleep(wait)
            self._refill(b, self.wall_clock(), rate)
        self._tokens = max(self._tokens - 1.0, 0.0)

    def spent(self) -> None:
        self.sent_at.append(self.wall_clock())
