"""Retrying through a Telegram outage: the backoff, one classified try, and a call kept trying.

The courier (bot.courier) retries its letters itself with `Backoff`; `keep_trying` does the same for
one call that cannot wait in the outbox (an approval card with its buttons).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.transport import SendResult, Transport, TriesOnce, classify

log = logging.getLogger("bot.notifier")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds between retries in an outage: first, doubled each try, never over cap."""

    first: float = 1.0
    cap: float = 10.0  # a try every 10 s costs nothing; the chat hears within 10 s of the end

    def delay(self, tries: int) -> float:
        return min(self.cap, self.first * 2 ** max(tries - 1, 0))


async def keep_trying(
    request: Callable[[], Awaitable[T]],
    *,
    what: str,
    wanted: Callable[[], bool] | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T | None:
    """One Telegram call retried through passing faults (as the courier does) until it goes through,
    a final refusal, or `wanted()` says it is moot (an approval answered or expired meanwhile); None
    when it did not go. For a message that cannot wait in the outbox (an approval card with its
    buttons). One WARNING when the first try fails, one INFO when it went after all."""
    backoff = backoff or Backoff()
    tries = 0
    while True:
        try:
            result = await request()
        except Exception as exc:
            outcome = classify(exc)
        else:
            if tries:
                log.info("%s sent after %d failed tries", what, tries)
            return result
        if not outcome.retry and outcome.retry_after is None:
            log.warning("%s not sent: %s", what, outcome.error)
            return None
        tries += 1
        if tries == 1:
            log.warning("Telegram unreachable for the %s: %s; retrying", what, outcome.error)
        await sleep(outcome.retry_after if outcome.retry_after is not None else backoff.delay(tries))
        if wanted is not None and not wanted():
            log.info("%s no longer needed after %d failed tries (answered or expired meanwhile)", what, tries)
            return None


async def attempt_text(
    transport: Transport, chat_id: int, html: str, silent: bool, plain: bool
) -> SendResult:
    """One try through the transport: its own `attempt_text` when it has one (Telegram), else
    `send_text` (an exception is a passing fault, None a final refusal)."""
    if isinstance(transport, TriesOnce):
        return await transport.attempt_text(chat_id, html, silent, plain=plain)
    try:
        mid = await transport.send_text(chat_id, html, silent)
    except Exception as exc:
        return SendResult(retry=True, error=f"{type(exc).__name__}: {exc}")
    return SendResult(message_id=mid) if mid is not None else SendResult(error="dropped by the transport")


__all__ = ["Backoff", "attempt_text", "keep_trying"]
