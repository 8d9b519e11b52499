"""Who may use the bot, and the audit trail: one outer middleware for messages and button presses alike.

Only the user ids in `settings.telegram_allowed_users` get through. Anyone else gets one polite
refusal (at most one per user per `refusal_interval`), nothing about the account, and a button
press from them is answered "not allowed". Every attempt, allowed or not, is written to the
journal's audit log with the command, its arguments and what came of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, TelegramObject

from bot.store.health import JournalWriteError
from handlers.common import AuditNote
from handlers.names import remember

log = logging.getLogger(__name__)

REFUSAL = "Sorry, this is a private bot. Your request was not processed."
NOT_ALLOWED = "not allowed"
EXPIRED_BUTTON = "This button has expired"
MAX_AUDIT_ARGS = 300


def describe(event: TelegramObject) -> tuple[str, str]:
    """(command, args) for the audit log: `/risk` + `percent 2`, or `button:ap` + the callback data."""
    if isinstance(event, CallbackQuery):
        data = event.data or ""
        return f"button:{data.split(':', 1)[0] or '?'}", data[:MAX_AUDIT_ARGS]
    if isinstance(event, Message):
        text = (event.text or event.caption or "").strip()
        if text.startswith("/"):
            head, _, rest = text.partition(" ")
            return head.split("@", 1)[0].lower()[:64], rest.strip()[:MAX_AUDIT_ARGS]
        return "text", text[:MAX_AUDIT_ARGS]
    return type(event).__name__, ""


class AccessMiddleware(BaseMiddleware):
    def __init__(
        self,
        journal: Any,
        allowed_users: Iterable[int],
        *,
        refusal_interval: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.allowed = frozenset(int(u) for u in allowed_users)
        self.refusal_interval = refusal_interval
        self.clock = clock
        self._last_refusal: dict[int, float] = {}
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            return await self._guarded(handler, event, data)
        finally:
            self._in_flight.discard(task)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for updates being handled (and audited) to finish; used on shutdown."""
        current = asyncio.current_task()
        pending = [t for t in self._in_flight if t is not current and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _guarded(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = getattr(event, "from_user", None)
        user_id = user.id if user is not None else None
        chat_id = _chat_id(event)
        command, args = describe(event)
        if user_id is None or user_id not in self.allowed:
            result = await self._refuse(event, user_id)
            await self._audit(command, user_id, chat_id, False, args, result)
            return None
        if isinstance(event, CallbackQuery) and (
            event.message is None or isinstance(event.message, InaccessibleMessage)
        ):
            await event.answer(EXPIRED_BUTTON)
            await self._audit(command, user_id, chat_id, True, args, "refused: old message")
            return None
        note = AuditNote()
        data["audit"] = note
        data["actor"] = f"tg:{user_id}"
        data["actor_name"] = (user.full_name if user is not None else "") or str(user_id)
        if user is not None:
            remember(data["actor"], user.first_name)  # messages then say "Alice", never tg:1000
        try:
            outcome = await handler(event, data)
        except Exception as exc:
            await self._audit(command, user_id, chat_id, True, args, f"error: {type(exc).__name__}")
            raise
        result = "unhandled" if outcome is UNHANDLED else note.result
        await self._audit(command, user_id, chat_id, True, args, result)
        return outcome

    async def _refuse(self, event: TelegramObject, user_id: int | None) -> str:
        if isinstance(event, CallbackQuery):
            await event.answer(NOT_ALLOWED)
            return "refused: button"
        if user_id is None or not isinstance(event, Message):
            return "refused: no user"
        now = self.clock()
        last = self._last_refusal.get(user_id)
        if last is not None and now - last < self.refusal_interval:
            return "refused: silent"
        self._last_refusal[user_id] = now
        await event.answer(REFUSAL)
        return "refused"

    async def _audit(
        self, command: str, user_id: int | None, chat_id: int | None, allowed: bool, args: str, result: str
    ) -> None:
        try:
            await self.journal.audit(
                command,
                user_id=user_id,
                chat_id=chat_id,
                allowed=allowed,
                args=args,
                result=result[:MAX_AUDIT_ARGS],
            )
        except JournalWriteError:
            pass  # logged and alarmed once per outage by the journal
        except Exception:  # the audit log must not take the controller down
            log.exception("audit write failed for %s by %s", command, user_id)


def _chat_id(event: TelegramObject) -> int | None:
    if isinstance(event, Message):
        return event.chat.id
    if isinstance(event, CallbackQuery) and event.message is not None:
        return event.message.chat.id
    return None
