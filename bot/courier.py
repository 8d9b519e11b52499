"""The sending side of the notifier: two lanes, retries for as long as an outage lasts, one catch-up.

The notifier renders and hands over `Letter`s; the courier's one task sends them in the order they
came. Must-deliver letters (bot.catchup.MUST_DELIVER) are written to the outbox table before the
first try and marked there when Telegram accepted them; the rest live in memory (at most
`max_memory`, the oldest goes). A passing fault (connection refused, timeout, 5xx, an HTML page)
keeps the letter at the head and is retried after a capped backoff, forever: one WARNING when the
outage starts, one INFO when it ends. 429 waits `retry_after`. A final refusal is tried once more as
plain text when the HTML was the problem, then recorded as failed with one log line. After an
outage (or a restart) with more than `summarize_over` must-deliver letters waiting, one summary
replaces them. The chat budget (ChatBudget) paces every send; only routine kinds are held by the
per-minute cap, so trades never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.budget import Pacer
from bot.catchup import SUMMARY_OVER, Waiting, summary_html
from bot.outage import Outage
from bot.retry import Backoff, attempt_text
from bot.transport import MAX_CAPTION, SendResult, Transport, TriesOnce, html_to_text, split_message
from trading.timezones import utc_now

if TYPE_CHECKING:
    from bot.store.outbox import OutboxStore

log = logging.getLogger("bot.notifier")

MESSAGE_LIMIT = 4000  # under Telegram's 4096, with room for entities counted in UTF-16


@dataclass(slots=True)
class Letter:
    """One message on its way: text (split when long) or a photo with a caption."""

    html: str
    silent: bool = False
    kind: str = ""
    png: bytes | None = None
    must: bool = False  # must-deliver: kept in the outbox until Telegram took it
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)
    row_id: int | None = None
    parts_sent: int = 0
    plain: bool = False  # Telegram refused the HTML: send the text without markup
    seq: int = 0


_DEFERRED = SendResult(error="deferred: a must-deliver message goes first")


class Courier:
    def __init__(
        self,
        transport: Transport,
        chat_id: int,
        pacer: Pacer,
        *,
        store: OutboxStore | None = None,
        limit: int = MESSAGE_LIMIT,
        backoff: Backoff | None = None,
        summarize_over: int = SUMMARY_OVER,
        state_line: Callable[[], str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_memory: int = 500,
        routine: frozenset[str] = frozenset(),
    ) -> None:
        self.transport, self.chat_id, self.pacer, self.store = transport, chat_id, pacer, store
        self.limit = limit
        self.summarize_over = summarize_over
        self.state_line = state_line
        self._sleep = sleep
        self.max_memory = max_memory
        self.routine = routine  # kinds a catch-up summary makes moot (SL moves, market updates...)
        self.stale = 0  # routine letters dropped because a summary told the newer state
        self.must: deque[Letter] = deque()
        self.other: deque[Letter] = deque()
        self._seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.backlog = False  # letters piled up (an outage, or left from before a restart)
        self.outage = Outage(backoff, sleep)
        self._store_broken = False
        self._in_db = False  # the task is inside an outbox write (close() lets it finish)
        self.sent = 0  # messages (parts) Telegram accepted
        self.failed = 0  # letters refused for good
        self.dropped = 0  # memory letters pushed out by max_memory, or left at stop
        self.summarised = 0  # must-deliver letters that went out inside a summary

    # ------------------------------------------------------------------ intake

    async def post(self, letter: Letter) -> None:
        """Queue a letter; a must-deliver one is stored in the outbox first (memory only if that fails)."""
        letter.seq = next(self._seq)
        if letter.must and self.store is not None and letter.row_id is None:
            try:
                letter.row_id = await self.store.add(
                    self.chat_id,
                    letter.kind,
                    letter.html,
                    silent=letter.silent,
                    meta=letter.meta,
                    now=letter.created_at,
                )
                self._store_broken = False
            except Exception as exc:
                if not self._store_broken:
                    log.warning(
                        "outbox: cannot store a %s message (%s: %s); kept in memory only until sent",
                        letter.kind,
                        type(exc).__name__,
                        exc,
                    )
                self._store_broken = True
        if letter.must:
            self.must.append(letter)
        else:
            self.other.append(letter)
            if len(self.other) > self.max_memory:
                self.other.popleft()
                self.dropped += 1
        self._wake.set()

    def discard_older(self, kind: str) -> int:
        """Drop queued memory letters of `kind` (a newer report replaces them); how many went."""
        keep = [x for x in self.other if x.kind != kind]
        gone = len(self.other) - len(keep)
        self.other = deque(keep)
        return gone

    async def restore(self) -> int:
        """Put this chat's undelivered outbox rows (from before a restart) at the head of the line."""
        if self.store is None:
            return 0
        rows = await self.store.pending(self.chat_id)
        known = {x.row_id for x in self.must}
        letters = [
            Letter(
                r.html,
                r.silent,
                r.kind,
                must=True,
                meta=r.meta,
                created_at=r.created_at,
                row_id=r.id,
                parts_sent=r.parts_sent,
                seq=-(len(rows) - i),
            )
            for i, r in enumerate(rows)
            if r.id not in known
        ]
        self.must.extendleft(reversed(letters))
        if letters:
            self.backlog = True
            log.info("outbox: %d message(s) from before the restart are waiting to be sent", len(letters))
            self._wake.set()
        return len(letters)

    @property
    def waiting(self) -> int:
        return len(self.must) + len(self.other)

    @property
    def backoff(self) -> Backoff:
        return self.outage.backoff

    @backoff.setter
    def backoff(self, value: Backoff) -> None:
        self.outage.backoff = value

    @property
    def tries(self) -> int:
        """Failed tries in the outage going on (0: none)."""
        return self.outage.tries

    @property
    def outages(self) -> int:
        return self.outage.count

    # ------------------------------------------------------------------ the task

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="notifier-courier")

    async def run(self) -> None:
        while True:
            letter = self._next()
            if letter is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._deliver(letter)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one letter must not end the courier
                log.exception("notification failed")
                self._pop(letter)
                self.failed += 1

    async def drain(self, timeout: float) -> int:
        """Send what is queued for up to `timeout` seconds without pacing, then stop; letters left."""
        self.pacer.draining = True
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.waiting and loop.time() < deadline and self._task is not None and not self._task.done():
            await asyncio.sleep(min(0.01, max(deadline - loop.time(), 0)))
        await self.close()
        kept = sum(1 for x in self.must if x.row_id is not None)
        lost = len(self.must) - kept + len(self.other)  # memory only: gone with this run
        if kept:
            log.warning(
                "notifier stop: %d message(s) kept in the outbox; they go out at the next start", kept
            )
        if lost:
            log.warning("notifier stop: %d message(s) not sent within %s s", lost, timeout)
        self.dropped += lost
        left = kept + lost
        self.must.clear()
        self.other.clear()
        self.pacer.draining = False
        return left

    async def close(self) -> None:
        """End the task, but never in the middle of an outbox write (a cancelled database call can
        leave the connection pool in a bad state at shutdown): such a write gets up to 2 s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while self._in_db and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    # ------------------------------------------------------------------ one step

    def _next(self) -> Letter | None:
        """The oldest letter of both lanes; a must-deliver one first while the per-minute cap holds
        the others back."""
        if not self.must or not self.other:
            return (self.must or self.other or [None])[0]
        head_must, head_other = self.must[0], self.other[0]
        if head_other.seq < head_must.seq and not self.pacer.minute_full():
            return head_other
        return head_must

    def _pop(self, letter: Letter) -> None:
        lane = self.must if letter.must else self.other
        if lane and lane[0] is letter:
            lane.popleft()
        else:
            with contextlib.suppress(ValueError):
                lane.remove(letter)
        if not self.must:
            self.backlog = False

    async def _deliver(self, letter: Letter) -> None:
        if letter.must and self.backlog and len(self.must) > self.summarize_over:
            await self._deliver_summary()
            return
        result = await self._send(letter)
        if result is _DEFERRED:
            return
        if result.ok:
            self._recovered()
            await self._record(letter.row_id, "sent")
            self._pop(letter)
        elif result.retry or result.retry_after is not None:
            await self._wait_out(result)
        elif result.plain_may_help and not letter.plain and letter.png is None:
            log.warning(
                "Telegram refused a %s message's HTML (%s): sending it as plain text",
                letter.kind or "chat",
                result.error,
            )
            letter.plain = True
        else:
            self._recovered()
            self.failed += 1
            log.warning(
                "Telegram refused a %s message for good (%s): not sent%s",
                letter.kind or "chat",
                result.error,
                "; kept in the outbox as failed" if letter.row_id is not None else "",
            )
            await self._record(letter.row_id, "failed", result.error)
            self._pop(letter)

    async def _deliver_summary(self) -> None:
        batch = list(self.must)
        state = ""
        if self.state_line is not None:
            try:
                state = self.state_line()
            except Exception as exc:
                state = ""
                log.warning("summary: the current state is not available (%s)", exc)
        stale = [x for x in self.other if x.kind in self.routine]
        html = summary_html(
            [Waiting(x.kind, x.html, x.created_at, x.meta) for x in batch],
            state,
            skipped=Counter(x.kind for x in stale),
        )
        summary = Letter(html, kind="summary", must=True)
        result = await self._send(summary)
        if result.ok:
            self._recovered()
            log.info("sent one catch-up summary for %d waiting message(s)", len(batch))
            await self._record_many([x.row_id for x in batch if x.row_id is not None], "summarised")
            for x in batch:
                self._pop(x)
            for x in stale:  # out of date now: the summary ends with the state as it is
                self._pop(x)
            self.summarised += len(batch)
            self.stale += len(stale)
            self.backlog = False
        elif result.retry or result.retry_after is not None:
            await self._wait_out(result)
        else:  # our own summary refused: send the letters one by one instead
            log.warning(
                "the catch-up summary was refused (%s); sending the %d messages one by one",
                result.error,
                len(batch),
            )
            self.backlog = False

    async def _send(self, letter: Letter) -> SendResult:
        """Every part not yet accepted, paced; stops at the first part that fails. A routine letter
        held by the per-minute cap steps aside (_DEFERRED) as soon as a must-deliver one waits."""
        while not letter.must and self.pacer.minute_full() and not self.pacer.draining:
            if self.must:
                return _DEFERRED
            await self._sleep(min(self.pacer.minute_wait(), 1.0))
        if letter.png is not None:
            return await self._send_photo(letter)
        text = html_to_text(letter.html) if letter.plain else letter.html
        parts = split_message(text, self.limit)
        result = SendResult(message_id=0)
        for index in range(letter.parts_sent, len(parts)):
            await self.pacer.wait(letter.must)
            result = await attempt_text(
                self.transport, self.chat_id, parts[index], letter.silent, letter.plain
            )
            if not result.ok:
                return result
            self.sent += 1
            self.pacer.spent()
            letter.parts_sent = index + 1
            if index + 1 < len(parts) and letter.row_id is not None:
                await self._progress(letter)
        return result

    async def _send_photo(self, letter: Letter) -> SendResult:
        """The photo (part 0), then a caption too long for Telegram as text parts after it."""
        png = letter.png
        if png is None:  # _send sends a letter without a photo as text
            raise ValueError("a photo letter without a photo")
        tries_once = self.transport if isinstance(self.transport, TriesOnce) else None
        long_caption = tries_once is not None and len(letter.html) > MAX_CAPTION
        if letter.parts_sent == 0:
            await self.pacer.wait(letter.must)
            if tries_once is not None:
                caption = "" if long_caption else letter.html
                result = await tries_once.attempt_photo(self.chat_id, png, caption, letter.silent)
            else:
                try:
                    mid = await self.transport.send_photo(self.chat_id, png, letter.html, letter.silent)
                except Exception as exc:
                    return SendResult(retry=True, error=f"{type(exc).__name__}: {exc}")
                result = (
                    SendResult(message_id=mid)
                    if mid is not None
                    else SendResult(error="dropped by the transport")
                )
            if not result.ok:
                return result
            self.sent += 1
            self.pacer.spent()
            letter.parts_sent = 1
        else:
            result = SendResult(message_id=0)
        if long_caption:
            parts = split_message(letter.html, self.limit)
            for index in range(letter.parts_sent - 1, len(parts)):
                await self.pacer.wait(letter.must)
                result = await attempt_text(self.transport, self.chat_id, parts[index], letter.silent, False)
                if not result.ok:
                    return result
                self.sent += 1
                self.pacer.spent()
                letter.parts_sent = index + 2
        return result

    async def _wait_out(self, result: SendResult) -> None:
        if await self.outage.wait_out(result, self.waiting):
            self.backlog = True

    def nudge(self) -> None:
        """Telegram answers again (polling got through): retry now instead of at the end of the backoff."""
        self.outage.nudge()

    def _recovered(self) -> None:
        self.outage.recovered(self.waiting)

    # ------------------------------------------------------------------ the outbox table (best effort)

    async def _record(self, row_id: int | None, status: str, error: str = "") -> None:
        if row_id is not None:
            await self._record_many([row_id], status, error)

    async def _record_many(self, ids: list[int], status: str, error: str = "") -> None:
        if self.store is None or not ids:
            return
        self._in_db = True
        try:
            await self.store.done(ids, status, error)
        except Exception as exc:  # sent is sent; at worst a restart sends it again
            log.warning(
                "outbox: could not mark %d message(s) %s (%s: %s)", len(ids), status, type(exc).__name__, exc
            )
        finally:
            self._in_db = False

    async def _progress(self, letter: Letter) -> None:
        self._in_db = True
        try:
            await self.store.progress(letter.row_id, letter.parts_sent)  # type: ignore[union-attr, arg-type]
        except Exception as exc:
            log.warning("outbox: could not record a sent part (%s)", exc)
        finally:
            self._in_db = False


__all__ = ["MESSAGE_LIMIT", "Backoff", "Courier", "Letter", "Pacer"]
