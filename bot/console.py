"""The console controller: without a Telegram token the same commands are typed in the terminal.

Typed lines become Telegram updates fed to the very same aiogram dispatcher (same handlers, same
access check and audit); a `ConsoleSession` answers the Bot API calls locally, printing messages
through the console transport and saving photos as PNG files. Buttons are shown as numbered
choices; typing `!N` presses button N of the last message that had buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import threading
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Chat, InputFile, Message, Update, User

from bot.transport import ConsoleTransport
from handlers.names import console_actor

log = logging.getLogger(__name__)

PROMPT = "xaubot> "
CONSOLE_BOT = User(id=1, is_bot=True, first_name="xaubot", username="xaubot")


class ConsoleSession(BaseSession):
    """Answers the Bot API methods the handlers use, without a network."""

    def __init__(self, transport: ConsoleTransport, user_id: int) -> None:
        super().__init__()
        self.transport = transport
        self.user_id = user_id
        self.last_buttons: list[tuple[str, str, int]] = []  # (text, callback data, message id)

    async def close(self) -> None:
        return None

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise RuntimeError("no downloads on the console")
        yield b""  # pragma: no cover

    def _message(self, message_id: int, text: str | None = None, markup: Any = None) -> Message:
        chat = Chat(id=self.user_id, type="private")
        return Message(
            message_id=message_id,
            date=datetime.now(UTC),
            chat=chat,
            from_user=CONSOLE_BOT,
            text=text,
            reply_markup=markup,
        )

    def _remember_buttons(self, markup: Any, message_id: int) -> str:
        rows = getattr(markup, "inline_keyboard", None)
        if not rows:
            return ""
        self.last_buttons = [(b.text, b.callback_data or "", message_id) for row in rows for b in row]
        return "\n" + "  ".join(f"[!{i}] {t}" for i, (t, _, _) in enumerate(self.last_buttons, start=1))

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> Any:
        name = type(method).__name__
        if name == "GetMe":
            return CONSOLE_BOT
        if name == "SendMessage":
            mid = await self.transport.send_text(self.user_id, method.text) or 0  # type: ignore[attr-defined]
            extra = self._remember_buttons(getattr(method, "reply_markup", None), mid)
            if extra:
                await self.transport.send_text(self.user_id, f"buttons of message #{mid}:{extra}")
            return self._message(mid, method.text)  # type: ignore[attr-defined]
        if name == "EditMessageText":
            mid = method.message_id or 0  # type: ignore[attr-defined]
            text = method.text + self._remember_buttons(getattr(method, "reply_markup", None), mid)  # type: ignore[attr-defined]
            await self.transport.edit_text(self.user_id, mid, text)
            return self._message(mid, method.text)  # type: ignore[attr-defined]
        if name == "SendDocument":
            document = method.document  # type: ignore[attr-defined]
            data = await _input_bytes(document)
            path = _unique(
                self.transport.photo_dir.parent
                / "exports"
                / (getattr(document, "filename", None) or "document.bin")
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            saved = await self.transport.send_text(
                self.user_id, f"file saved: {path} ({getattr(method, 'caption', '')})"
            )
            return self._message(saved or 0)
        if name in ("SendPhoto", "SendDocument"):
            payload = getattr(method, "photo", None) or getattr(method, "document", None)
            data = await _input_bytes(payload)
            caption = (getattr(method, "caption", None) or "") + self._remember_buttons(
                getattr(method, "reply_markup", None), 0
            )
            photo = await self.transport.send_photo(self.user_id, data, caption)
            return self._message(photo or 0)
        if name == "SendMediaGroup":  # an album: each photo saved, the caption printed with the first
            sent = []
            for item in method.media:  # type: ignore[attr-defined]
                data = await _input_bytes(item.media)
                sent.append(
                    self._message(
                        await self.transport.send_photo(self.user_id, data, item.caption or "") or 0
                    )
                )
            return sent
        if name == "EditMessageReplyMarkup":
            extra = self._remember_buttons(getattr(method, "reply_markup", None), method.message_id or 0)  # type: ignore[attr-defined]
            if extra:
                await self.transport.send_text(self.user_id, "buttons:" + extra)
            return True
        if name == "AnswerCallbackQuery":
            if getattr(method, "text", None):
                await self.transport.send_text(self.user_id, method.text)  # type: ignore[attr-defined]
            return True
        return True  # setMyCommands, deleteMessage, sendChatAction, ...


def _unique(path: Path) -> Path:
    """`path`, or `name-2.ext`, `name-3.ext`... when a file of that name is already there (never overwrite)."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


async def _input_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, InputFile):
        chunks = [c async for c in payload.read(None)]  # type: ignore[arg-type]
        return b"".join(chunks)
    return b""


class ConsoleController:
    """Reads commands from stdin and feeds them to the dispatcher as the console user.

    At the prompt the terminal is in raw mode, so Ctrl-C arrives as a key, not as SIGINT:
    `on_interrupt` (the app's stop, the same as a signal) is called for each press.
    """

    def __init__(
        self,
        dp: Dispatcher,
        transport: ConsoleTransport,
        user_id: int,
        on_interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.dp = dp
        self.session = ConsoleSession(transport, user_id)
        self.bot = Bot("1:console", session=self.session)
        self.user_id = user_id
        console_actor(f"tg:{user_id}")  # whoever types here reads "you", never an id
        self.on_interrupt = on_interrupt
        self._update_ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._tty_mode: list[Any] | None = None  # the terminal's settings before the prompt took it
        self._command: asyncio.Task[None] | None = None  # the typed command being answered

    def _user(self) -> User:
        return User(id=self.user_id, is_bot=False, first_name="console")

    async def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if line.startswith("!") and line[1:].isdigit():
            index = int(line[1:]) - 1
            if not 0 <= index < len(self.session.last_buttons):
                await self.session.transport.send_text(self.user_id, "no such button")
                return
            text, data, mid = self.session.last_buttons[index]
            message = self.session._message(mid, text)
            query = CallbackQuery(
                id=str(next(self._update_ids)),
                from_user=self._user(),
                chat_instance="console",
                data=data,
                message=message,
            )
            await self.dp.feed_update(
                self.bot, Update(update_id=next(self._update_ids), callback_query=query)
            )
            return
        if line.startswith("!"):  # not "!N": say how buttons work rather than treat it as text
            count = len(self.session.last_buttons)
            await self.session.transport.send_text(
                self.user_id,
                f"!N presses button N of the last message with buttons (now !1 to !{count})"
                if count
                else "no buttons to press: !N presses button N of the last message with buttons",
            )
            return
        names = {n for spec in self.dp.get("commands") or () for n in (spec.name, *spec.aliases)}
        if not line.startswith("/") and line.split()[0].lower() in names:  # the slash is optional here
            line = "/" + line
        message = Message(
            message_id=next(self._update_ids),
            date=datetime.now(UTC),
            chat=Chat(id=self.user_id, type="private"),
            from_user=self._user(),
            text=line,
        )
        await self.dp.feed_update(self.bot, Update(update_id=next(self._update_ids), message=message))

    def start(self) -> None:
        if sys.stdin is None or not sys.stdin.isatty():
            log.info("console commands disabled: stdin is not a terminal")
            return
        if sys.stdout is not None and sys.stdout.isatty():
            # a prompt line that stays at the bottom: reports print above it, typed text is kept
            self._tty_mode = _tty_mode()
            self._task = asyncio.create_task(self._prompt(), name="console-commands")
            return
        # A daemon thread reads stdin: a readline blocked in the loop's default executor would keep
        # asyncio.run() from returning after shutdown until Enter was pressed.
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()
        threading.Thread(target=_read_stdin, args=(loop, lines), name="console-stdin", daemon=True).start()
        self._task = asyncio.create_task(self._read(lines), name="console-commands")

    async def _prompt(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.patch_stdout import patch_stdout

        session: PromptSession[str] = PromptSession()
        with patch_stdout(raw=True):
            while True:
                try:
                    # handle_sigint=False: the prompt must not take over the loop's SIGINT handler (it
                    # removed the app's on exit, and a SIGINT raised from here came back as a key press)
                    line = await session.prompt_async(PROMPT, handle_sigint=False)
                except EOFError:  # Ctrl-D
                    return
                except KeyboardInterrupt:  # Ctrl-C, read as a key: stop the bot (a second press exits)
                    if self.on_interrupt is None:
                        return
                    self.on_interrupt()
                    continue
                await self._answer(line)

    async def _read(self, lines: asyncio.Queue[str]) -> None:
        while True:
            line = await lines.get()
            if not line:  # end of input
                return
            await self._answer(line)

    async def _answer(self, line: str) -> None:
        """One typed command, in its own task: a stop lets it finish (its journal reads and writes)
        instead of cancelling it mid-query."""
        self._command = asyncio.create_task(self.handle_line(line), name="console-command")
        try:
            await asyncio.shield(self._command)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("console command failed: %s", line.strip())
        finally:
            self._command = None

    async def stop(self, timeout: float = 5.0) -> None:
        command = self._command
        if command is not None and not command.done():
            await asyncio.wait([command], timeout=timeout)
            command.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def restore_terminal(self) -> None:
        """Give the terminal back as it was (cooked mode, echo, cursor shown) before an immediate exit
        that skips the prompt's own clean-up."""
        if self._tty_mode is None:
            return
        with contextlib.suppress(Exception):
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._tty_mode)
            sys.__stdout__.write("\x1b[?25h\n")  # type: ignore[union-attr]
            sys.__stdout__.flush()  # type: ignore[union-attr]


def _tty_mode() -> list[Any] | None:
    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno())
    except (ImportError, OSError, ValueError):  # Windows, or no real terminal
        return None


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
    while True:
        line = sys.stdin.readline()
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop is closed: the bot has stopped
            return
        if not line:
            return
