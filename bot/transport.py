"""Where bot messages go: Telegram through aiogram, or the terminal when no token is set.

A `Transport` never raises into its caller: a failed notification is logged and dropped (returning
None / False), so a Telegram outage can never stop trading. `TelegramTransport` retries 429
(`retry_after`) and passing faults (network errors, timeouts, 5xx, a reply that is not JSON) a bounded
number of times; other API errors are not retried. `TelegramTransport.attempt_text` makes one try and
says how it went (`SendResult`): the notifier's outbox does its own retrying for as long as an outage
lasts (bot.courier).
`ConsoleTransport` prints a plain-text rendering (its clock is the message's own clock line) and saves
photos as PNG files.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar, runtime_checkable

from trading.timezones import to_wib, utc_now

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Telegram's message limit
MAX_CAPTION = 1024  # Telegram's photo caption limit

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Transport(Protocol):
    async def send_text(self, chat_id: int, html: str, silent: bool = False) -> int | None:
        """Send one HTML message; the message id, or None when it was dropped."""
        ...

    async def send_photo(
        self, chat_id: int, png: bytes, caption_html: str = "", silent: bool = False
    ) -> int | None:
        """Send a PNG with an optional HTML caption; the message id, or None when dropped."""
        ...

    async def edit_text(self, chat_id: int, message_id: int, html: str) -> bool:
        """Replace a sent message's text; False when the edit failed."""
        ...


# ---------------------------------------------------------------------------------------- text helpers

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(text: str) -> str:
    """Telegram HTML -> plain text: tags stripped, entities unescaped."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a message into parts of at most `limit` characters on line boundaries.

    Lines are never broken unless a single line is longer than `limit` (then it is cut, on a space
    when there is one in its second half). Joining the parts with "\\n" gives the input back
    whenever no line was cut. Empty input gives no parts.
    """
    if limit < 2:
        raise ValueError(f"split_message: limit must be >= 2, got {limit}")
    if not text:
        return []
    parts: list[str] = []
    current: list[str] = []
    size = 0  # characters in "\n".join(current)
    for line in text.split("\n"):
        for piece in _cut_line(line, limit):
            extra = len(piece) + (1 if current else 0)
            if current and size + extra > limit:
                parts.append("\n".join(current))
                current, size = [], 0
                extra = len(piece)
            current.append(piece)
            size += extra
    if current:
        parts.append("\n".join(current))
    return parts


def _cut_line(line: str, limit: int) -> list[str]:
    pieces = []
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit)
        cut = cut if cut > 0 else limit
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ") if line[cut : cut + 1] == " " else line[cut:]
    pieces.append(line)
    return pieces


# ---------------------------------------------------------------------------------------- one try


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one send attempt went: a message id, or why not and whether trying again can help."""

    message_id: int | None = None
    retry: bool = False  # a passing fault: network, timeout, 5xx, a reply that is not the API's JSON
    retry_after: float | None = None  # 429: Telegram says when
    plain_may_help: bool = False  # 400 about the HTML: the same text without markup may go through
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.message_id is not None


@runtime_checkable
class TriesOnce(Protocol):
    """A transport that makes one try and says how it went (TelegramTransport): the courier then
    retries a passing fault and gives up on a final refusal. Other transports are tried through
    `send_text`/`send_photo`, an exception counting as a passing fault."""

    async def attempt_text(
        self, chat_id: int, html: str, silent: bool = False, *, plain: bool = False
    ) -> SendResult: ...

    async def attempt_photo(
        self, chat_id: int, png: bytes, caption_html: str = "", silent: bool = False
    ) -> SendResult: ...


def classify(exc: BaseException) -> SendResult:
    """An aiogram exception -> SendResult. Never-succeeding refusals (400 bad request, 401, 403 blocked,
    404, 413 too large) are final; everything that can pass (connection refused, timeout, 5xx, an HTML
    error page from a proxy, an unknown status) is retryable."""
    from aiogram.exceptions import (
        ClientDecodeError,
        TelegramAPIError,
        TelegramBadRequest,
        TelegramEntityTooLarge,
        TelegramForbiddenError,
        TelegramMigrateToChat,
        TelegramNetworkError,
        TelegramNotFound,
        TelegramRetryAfter,
        TelegramUnauthorizedError,
    )

    text = _one_line(exc)
    if isinstance(exc, TelegramRetryAfter):
        return SendResult(retry_after=float(exc.retry_after), error=text)
    if isinstance(exc, TelegramMigrateToChat):  # the group became a supergroup: the chat id must change
        return SendResult(error=f"{text} (the group moved: set TELEGRAM_CHAT_ID={exc.migrate_to_chat_id})")
    if isinstance(exc, TelegramBadRequest):
        return SendResult(plain_may_help="entities" in text.lower() or "tag" in text.lower(), error=text)
    if isinstance(
        exc, TelegramEntityTooLarge | TelegramForbiddenError | TelegramUnauthorizedError | TelegramNotFound
    ):
        return SendResult(error=text)
    if isinstance(exc, TelegramNetworkError | TelegramAPIError | ClientDecodeError | TimeoutError | OSError):
        return SendResult(retry=True, error=text)
    return SendResult(error=text)


def _one_line(exc: BaseException) -> str:
    """A short description: an HTML error page or a decode error is named, not dumped."""
    from aiogram.exceptions import ClientDecodeError

    if isinstance(exc, ClientDecodeError):
        body = str(getattr(exc, "data", ""))
        kind = "an HTML page" if "<html" in body.lower() else "not JSON"
        title = _title(body) or " ".join(re.findall(r"\b[45]\d\d\b", body)[:1])
        return f"the reply was {kind}" + (f" ({title})" if title else "")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200]


def _title(body: str) -> str:
    found = re.search(r"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
    return html_to_text(found.group(1)).strip()[:60] if found else ""


# ---------------------------------------------------------------------------------------- Telegram


class TelegramTransport:
    """Sends through an aiogram `Bot` with HTML parse mode and link previews off.

    A 429 is retried after its `retry_after` (if that is at most `max_wait` seconds), a passing fault
    (network, 5xx, not JSON) after a short backoff, up to `attempts` tries in all; then the message is
    dropped with a log line. A final refusal (bad request, forbidden, ...) is logged and dropped at once.
    """

    def __init__(
        self,
        bot: Any,
        *,
        attempts: int = 3,
        max_wait: float = 60.0,
        backoff: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.bot = bot
        self.attempts = attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self._sleep = sleep
        self.retries = 0
        self.failures = 0

    async def send_text(self, chat_id: int, html: str, silent: bool = False) -> int | None:
        from aiogram.types import LinkPreviewOptions

        msg = await self._call(
            "sendMessage",
            lambda: self.bot.send_message(
                chat_id,
                html,
                parse_mode="HTML",
                disable_notification=silent,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
        )
        return msg.message_id if msg is not None else None

    async def attempt_text(
        self, chat_id: int, html: str, silent: bool = False, *, plain: bool = False
    ) -> SendResult:
        """One try, no retry, nothing logged: the caller decides. `plain`: the text has no markup
        (the caller converted it after Telegram refused its HTML); it goes without a parse mode."""
        from aiogram.types import LinkPreviewOptions

        try:
            msg = await self.bot.send_message(
                chat_id,
                html,
                parse_mode=None if plain else "HTML",
                disable_notification=silent,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except Exception as exc:
            return classify(exc)
        return SendResult(message_id=msg.message_id)

    async def attempt_photo(
        self, chat_id: int, png: bytes, caption_html: str = "", silent: bool = False
    ) -> SendResult:
        """One try at a photo with a caption of at most MAX_CAPTION characters; no retry, nothing logged."""
        from aiogram.types import BufferedInputFile

        stamp = utc_now().strftime("%Y%m%d_%H%M%S")
        try:
            msg = await self.bot.send_photo(
                chat_id,
                BufferedInputFile(png, filename=f"chart_{stamp}.png"),
                caption=caption_html or None,
                parse_mode="HTML" if caption_html else None,
                disable_notification=silent,
            )
        except Exception as exc:
            return classify(exc)
        return SendResult(message_id=msg.message_id)

    async def send_photo(
        self, chat_id: int, png: bytes, caption_html: str = "", silent: bool = False
    ) -> int | None:
        from aiogram.types import BufferedInputFile

        long_caption = len(caption_html) > MAX_CAPTION
        caption = None if long_caption or not caption_html else caption_html
        stamp = utc_now().strftime("%Y%m%d_%H%M%S")
        msg = await self._call(
            "sendPhoto",
            lambda: self.bot.send_photo(
                chat_id,
                BufferedInputFile(png, filename=f"chart_{stamp}.png"),
                caption=caption,
                parse_mode="HTML" if caption else None,
                disable_notification=silent,
            ),
        )
        if long_caption:  # too long for a caption: send it as the message after the photo
            for part in split_message(caption_html):
                await self.send_text(chat_id, part, silent=silent)
        return msg.message_id if msg is not None else None

    async def edit_text(self, chat_id: int, message_id: int, html: str) -> bool:
        from aiogram.types import LinkPreviewOptions

        result = await self._call(
            "editMessageText",
            lambda: self.bot.edit_message_text(
                text=html,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode="HTML",
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
            not_modified_ok=True,
        )
        return result is not None

    async def _call(
        self, what: str, request: Callable[[], Awaitable[T]], not_modified_ok: bool = False
    ) -> T | None:
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                return await request()
            except Exception as exc:  # never let a notification failure reach the caller
                result = classify(exc)
            if not_modified_ok and "not modified" in result.error.lower():
                return True  # type: ignore[return-value]  # the text is already what we want
            if result.retry_after is not None:
                delay = result.retry_after
                if last or delay > self.max_wait:
                    log.warning("%s dropped after %d tries: 429, retry after %s s", what, attempt, delay)
                    break
                log.info("%s rate-limited: retrying in %s s", what, delay)
            elif result.retry:
                delay = self.backoff * attempt
                if last:
                    log.warning("%s dropped after %d tries: %s", what, attempt, result.error)
                    break
                log.info("%s failed (%s): retrying in %s s", what, result.error, delay)
            else:
                log.warning("%s dropped: %s", what, result.error)
                break
            self.retries += 1
            await self._sleep(delay)
        self.failures += 1
        return None


# ---------------------------------------------------------------------------------------- console


class ConsoleTransport:
    """Prints messages as plain text under a `── message #N` line; photos go to `photo_dir` as PNG files."""

    def __init__(
        self,
        out: TextIO | None = None,
        photo_dir: Path | str = Path("data/photos"),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.out = out
        self.photo_dir = Path(photo_dir)
        self.clock = clock
        self._ids = itertools.count(1)
        self.saved: list[Path] = []

    def _stream(self) -> TextIO:
        return self.out if self.out is not None else sys.stdout  # resolved late: tests swap sys.stdout

    def _print(self, head: str, body: str) -> None:
        # no timestamp of its own: each message ends with its one clock line (the market's)
        text = f"── {head}\n{body}\n" if body else f"── {head}\n"
        try:
            stream = self._stream()
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stream
            log.warning("console output failed: %s", exc)

    async def send_text(self, chat_id: int, html: str, silent: bool = False) -> int | None:
        message_id = next(self._ids)
        self._print(f"message #{message_id}" + (" (silent)" if silent else ""), html_to_text(html))
        return message_id

    async def send_photo(
        self, chat_id: int, png: bytes, caption_html: str = "", silent: bool = False
    ) -> int | None:
        message_id = next(self._ids)
        stamp = to_wib(self.clock()).strftime("%Y%m%d_%H%M%S")
        path = self.photo_dir / f"photo_{stamp}_{message_id}.png"
        try:
            await asyncio.to_thread(_write_bytes, path, png)
        except OSError as exc:
            log.warning("could not save photo to %s: %s", path, exc)
            self._print(f"photo #{message_id} NOT saved ({exc})", html_to_text(caption_html))
            return None
        self.saved.append(path)
        self._print(f"photo #{message_id} saved: {path}", html_to_text(caption_html))
        return message_id

    async def edit_text(self, chat_id: int, message_id: int, html: str) -> bool:
        self._print(f"message #{message_id} edited", html_to_text(html))
        return True


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


__all__ = [
    "MAX_CAPTION",
    "MAX_TEXT",
    "ConsoleTransport",
    "SendResult",
    "TelegramTransport",
    "Transport",
    "classify",
    "html_to_text",
    "split_message",
]
