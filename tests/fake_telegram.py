"""A local fake of the Telegram Bot API (aiohttp on 127.0.0.1) for driving the real aiogram Bot in tests.

    async with FakeTelegramServer() as server:
        bot = server.bot()                       # aiogram Bot whose session points at server.base_url
        server.push_message(user_id=7, chat_id=7, text="/start")
        call = await server.wait_for("sendMessage", lambda c: c.params["chat_id"] == 7)

What it does, close to the real API:
- routes GET/POST `/bot{token}/{method}` (method names case-insensitive); JSON, urlencoded and multipart bodies;
- getUpdates long-polls a queue the test feeds (`push_message`, `push_callback`, `push_update`), with
  offset confirmation: updates below the offset are dropped, others are returned again;
- sendMessage / sendPhoto / sendDocument return Message objects (per-chat increasing message_id, chat,
  from = the bot, date, text or caption, inline reply_markup echoed); uploaded bytes are kept;
- sendMediaGroup (an album of 2-10 photos, each uploaded as attach://… or a file_id) returns one Message
  per photo sharing a media_group_id (400 for fewer than 2 or more than 10 items, a type other than
  photo, a caption over 1024 or a missing upload);
- editMessageText / editMessageReplyMarkup edit the stored message (400 "message is not modified" when
  nothing changes, 400 "message to edit not found" for an unknown id; editing text without a markup
  removes the inline keyboard, as Telegram does); deleteMessage marks it deleted;
- answerCallbackQuery (400 for an id the server never issued), setMyCommands/getMyCommands, deleteWebhook,
  sendChatAction, getMe;
- 400 for an empty text or one over 4096 characters, a caption over 1024;
- fault injection: `rate_limit(count, retry_after)` answers 429 with parameters.retry_after (the "429 mode"),
  `fail_next(method, status, description)` any other error (`html=True`: an HTML error page, as a proxy
  in front of the API sends), `fail_all(status, ...)` every call until `heal()`; `refuse_connections()`
  stops listening (connection refused) until `accept_connections()` (or `heal()`) listens on the same port.
Every request is recorded in `server.calls`, including refused ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiogram import Bot

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALBUM = 10  # photos in one sendMediaGroup
# form fields that are plain strings even when they look like JSON (aiogram sends str values unquoted)
STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "language_code",
        "url",
        "photo",
        "document",
        "business_connection_id",
        "message_effect_id",
        "description",
        "short_description",
    }
)
SEND_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "sendmediagroup"})
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request the bot made: method as sent, decoded params, uploaded files, and what was answered."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    status: int
    response: dict[str, Any]
    at: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        return self.response.get("result")


@dataclass(slots=True)
class SentMessage:
    """A message the bot sent, kept up to date by later edits. `text` is the raw text as sent (HTML and all)."""

    chat_id: int
    message_id: int
    kind: str  # "text", "photo", "document"
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    document: bytes | None = None
    filename: str | None = None
    date: int = 0
    edits: int = 0
    deleted: bool = False
    media_group_id: str | None = None  # set on the photos of one album (sendMediaGroup)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline buttons, row by row flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass(slots=True)
class _Fault:
    methods: frozenset[str] | None  # lower-case names; None = every method except getUpdates/getMe
    remaining: int | None  # None: until heal()
    status: int
    description: str
    retry_after: int | None = None
    html: bool = False  # answer an HTML page (a proxy's 502), not the API's JSON


@dataclass(slots=True)
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 1
    next_message_id: dict[int, int] = field(default_factory=dict)
    callback_ids: set[str] = field(default_factory=set)


class FakeTelegramServer:
    """The fake Bot API. Use as `async with FakeTelegramServer() as server:` or call start()/stop()."""

    def __init__(
        self,
        *,
        bot_id: int = 5_000_000_001,
        bot_username: str = "xau_test_bot",
        bot_name: str = "XAU Test Bot",
        token: str | None = None,
        max_poll_wait: float = 5.0,
    ) -> None:
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.token = token or f"{bot_id}:TEST-fake-telegram-token"
        self.max_poll_wait = max_poll_wait
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.base_url = ""
        self._state = _State()
        self._faults: list[_Fault] = []
        self._update_event = asyncio.Event()
        self._call_event = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._bound: tuple[str, int] | None = None
        self._callback_counter = itertools.count(1)
        self._album_counter = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = a free port); returns the base URL for TelegramAPIServer.from_base."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        bound = self._runner.addresses[0][1]
        self._bound = (host, bound)
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def refuse_connections(self) -> None:
        """Stop listening and drop the open keep-alive connections: every request fails with
        "connection refused" (the API is down)."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server if self._runner is not None else None
        for handler in list(server.connections if server is not None else []):
            handler.force_close()

    async def accept_connections(self) -> None:
        """Listen again on the same address after refuse_connections()."""
        if self._site is None and self._runner is not None and self._bound is not None:
            self._site = web.TCPSite(self._runner, *self._bound, reuse_address=True)
            await self._site.start()

    async def stop(self) -> None:
        self._closing = True
        self._update_event.set()  # wake long polls so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def bot(self, token: str | None = None, **bot_kwargs: Any) -> Bot:
        """A real aiogram Bot talking to this server (the caller closes it: `await bot.session.close()`)."""
        from aiogram import Bot

        return Bot(token or self.token, session=local_session(self.base_url), **bot_kwargs)

    # ------------------------------------------------------------------ what tests feed in

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw Update (update_id is assigned); returns it."""
        update = {**update, "update_id": self._state.next_update_id}
        self._state.next_update_id += 1
        self._state.updates.append(update)
        self._update_event.set()
        return update

    def push_message(
        self,
        user_id: int,
        chat_id: int,
        text: str,
        *,
        first_name: str = "Trader",
        username: str | None = None,
    ) -> dict[str, Any]:
        """A user's text message (a leading /command gets its bot_command entity). Returns the Update."""
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self._user(user_id, first_name, username),
            "chat": self._chat(chat_id, first_name, username),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.push_update({"message": message})

    def push_callback(
        self,
        user_id: int,
        chat_id: int,
        data: str,
        message_id: int,
        *,
        first_name: str = "Trader",
        username: str | None = None,
    ) -> dict[str, Any]:
        """A button press on message `message_id`. The message is the stored one (with its current keyboard);
        an id the bot never sent arrives as an inaccessible message (date 0), like a very old one."""
        stored = self.messages.get((chat_id, message_id))
        message = (
            self._message_json(stored)
            if stored is not None and not stored.deleted
            else {"message_id": message_id, "chat": self._chat(chat_id, first_name, username), "date": 0}
        )
        query_id = f"cbq-{next(self._callback_counter)}"
        self._state.callback_ids.add(query_id)
        query = {
            "id": query_id,
            "from": self._user(user_id, first_name, username),
            "chat_instance": f"ci-{chat_id}",
            "data": data,
            "message": message,
        }
        return self.push_update({"callback_query": query})

    def rate_limit(self, count: int = 1, retry_after: int = 1, methods: Iterable[str] | None = None) -> None:
        """The next `count` matching calls get 429 Too Many Requests with parameters.retry_after.
        methods=None means every method except getUpdates and getMe."""
        description = f"Too Many Requests: retry after {retry_after}"
        self._faults.append(_Fault(_lower(methods), count, 429, description, retry_after))

    def fail_next(
        self,
        method: str,
        status: int = 400,
        description: str = "Bad Request: test fault",
        count: int = 1,
        *,
        html: bool = False,
    ) -> None:
        """The next `count` calls of `method` get this error (`html`: as an HTML page, not JSON)."""
        self._faults.append(_Fault(_lower([method]), count, status, description, html=html))

    def fail_all(
        self,
        status: int = 500,
        description: str = "Internal Server Error",
        *,
        html: bool = False,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Every matching call gets this error until heal() (methods=None: all but getUpdates and getMe).
        A newer fail_all replaces an older one."""
        self._faults = [f for f in self._faults if f.remaining is not None]
        self._faults.append(_Fault(_lower(methods), None, status, description, html=html))

    async def heal(self) -> None:
        """The outage ends: no more injected faults, and the server listens again."""
        self._faults.clear()
        await self.accept_connections()

    # ------------------------------------------------------------------ what tests read back

    def sent_messages(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent (text, photo, document), oldest first, current state after edits."""
        return [m for m in self.messages.values() if chat_id is None or m.chat_id == chat_id]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> ApiCall:
        """The first recorded call (from index `since` of `calls`) to `method` that satisfies `predicate`,
        waiting up to `timeout` seconds for it. Raises TimeoutError naming what was seen instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        checked = since
        while True:
            for call in self.calls[checked:]:
                if call.method.lower() == method.lower() and (predicate is None or predicate(call)):
                    return call
            checked = max(checked, len(self.calls))
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [c.method for c in self.calls[since:] if c.method.lower() != "getupdates"]
                raise TimeoutError(f"no matching {method} call within {timeout} s; calls seen: {seen}")
            self._call_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._call_event.wait(), remaining)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params, files = await _read_params(request)
        status, body = await self._dispatch(token, method, params, files)
        self.calls.append(ApiCall(method, params, files, status, body, time.time()))
        self._call_event.set()
        if "html" in body:
            return web.Response(text=body["html"], status=status, content_type="text/html")
        return web.json_response(body, status=status)

    async def _dispatch(
        self, token: str, method: str, params: dict[str, Any], files: dict[str, bytes]
    ) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return _error(401, "Unauthorized")
        name = method.lower()
        fault = self._take_fault(name)
        if fault is not None:
            if fault.html:
                title = html.escape(f"{fault.status} {fault.description}")
                return fault.status, {
                    "html": f"<html><head><title>{title}</title></head><body><center><h1>"
                    f"{title}</h1></center><hr><center>nginx</center></body></html>"
                }
            extra = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
            return _error(fault.status, fault.description, extra)
        handler = getattr(self, f"_api_{name}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params, files)
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        return 200, {"ok": True, "result": result}

    def _take_fault(self, name: str) -> _Fault | None:
        for fault in self._faults:
            applies = (
                name in fault.methods if fault.methods is not None else name not in ("getupdates", "getme")
            )
            if applies and fault.remaining is None:
                return fault
            if applies and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ API methods

    async def _api_getme(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_getupdates(self, params: dict[str, Any], files: dict[str, bytes]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        if offset:
            self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self._state.updates and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._update_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_event.wait(), remaining)
        return self._state.updates[:limit]

    async def _api_deletewebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        return True

    async def _api_sendchataction(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        _chat_id(params)
        return True

    async def _api_setmycommands(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: commands must be an array")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[_scope_key(params)] = commands
        return True

    async def _api_getmycommands(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        return self.commands.get(_scope_key(params), [])

    async def _api_sendmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        text = params.get("text")
        _check_text(text)
        msg = self._new_message(params, "text")
        msg.text = text
        msg.parse_mode = params.get("parse_mode")
        return self._message_json(msg)

    async def _api_sendphoto(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        data = _attachment(params, files, "photo")
        _check_caption(params.get("caption"))
        msg = self._new_message(params, "photo")
        msg.photo = data
        msg.caption = params.get("caption")
        msg.parse_mode = params.get("parse_mode")
        return self._message_json(msg)

    async def _api_sendmediagroup(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= MAX_ALBUM:
            raise _ApiError(400, f"Bad Request: media must be an array of 2-{MAX_ALBUM} items")
        uploads = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") != "photo":
                raise _ApiError(400, "Bad Request: only photos are supported by the fake's sendMediaGroup")
            _check_caption(item.get("caption"))
            uploads.append(_attachment(dict(item), files, "media"))
        group = f"album-{next(self._album_counter)}"
        out = []
        for item, data in zip(media, uploads, strict=True):
            msg = self._new_message({**params, "reply_markup": None}, "photo")
            msg.photo, msg.caption, msg.parse_mode = data, item.get("caption"), item.get("parse_mode")
            msg.media_group_id = group
            out.append(self._message_json(msg))
        return out

    def albums(self, chat_id: int | None = None) -> list[list[SentMessage]]:
        """The albums the bot sent, oldest first, each as its photos in order."""
        groups: dict[str, list[SentMessage]] = {}
        for msg in self.sent_messages(chat_id):
            if msg.media_group_id is not None:
                groups.setdefault(msg.media_group_id, []).append(msg)
        return list(groups.values())

    async def _api_senddocument(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        data = _attachment(params, files, "document")
        _check_caption(params.get("caption"))
        msg = self._new_message(params, "document")
        msg.document = data
        msg.filename = params.get("_filename_document") or "document"
        msg.caption = params.get("caption")
        msg.parse_mode = params.get("parse_mode")
        return self._message_json(msg)

    async def _api_editmessagetext(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        msg = self._stored(params, "edit")
        text = params.get("text")
        _check_text(text)
        if msg.kind != "text":
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = _inline_markup(params.get("reply_markup"))
        if text == msg.text and markup == msg.reply_markup:
            raise _not_modified()
        msg.text, msg.reply_markup, msg.parse_mode = text, markup, params.get("parse_mode")
        msg.edits += 1
        return self._message_json(msg, edited=True)

    async def _api_editmessagereplymarkup(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        msg = self._stored(params, "edit")
        markup = _inline_markup(params.get("reply_markup"))
        if markup == msg.reply_markup:
            raise _not_modified()
        msg.reply_markup = markup
        msg.edits += 1
        return self._message_json(msg, edited=True)

    async def _api_deletemessage(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        msg = self._stored(params, "delete")
        msg.deleted = True
        return True

    async def _api_answercallbackquery(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        if str(params.get("callback_query_id")) not in self._state.callback_ids:
            raise _ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        return True

    # ------------------------------------------------------------------ records and JSON

    def _next_message_id(self, chat_id: int) -> int:
        nxt = self._state.next_message_id.get(chat_id, 1)
        self._state.next_message_id[chat_id] = nxt + 1
        return nxt

    def _new_message(self, params: dict[str, Any], kind: str) -> SentMessage:
        chat_id = _chat_id(params)
        msg = SentMessage(
            chat_id=chat_id,
            message_id=self._next_message_id(chat_id),
            kind=kind,
            reply_markup=_inline_markup(params.get("reply_markup")),
            date=int(time.time()),
        )
        self.messages[(chat_id, msg.message_id)] = msg
        return msg

    def _stored(self, params: dict[str, Any], verb: str) -> SentMessage:
        if "inline_message_id" in params:
            raise _ApiError(400, "Bad Request: inline messages are not supported by the fake")
        key = (_chat_id(params), int(params.get("message_id") or 0))
        msg = self.messages.get(key)
        if msg is None or msg.deleted:
            raise _ApiError(400, f"Bad Request: message to {verb} not found")
        return msg

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_name, "username": self.bot_username}

    @staticmethod
    def _user(user_id: int, first_name: str, username: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        if username:
            user["username"] = username
        return user

    @staticmethod
    def _chat(chat_id: int, first_name: str = "Trader", username: str | None = None) -> dict[str, Any]:
        if chat_id < 0:
            return {
                "id": chat_id,
                "type": "supergroup" if chat_id < -1_000_000_000_000 else "group",
                "title": "Group",
            }
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
        if username:
            chat["username"] = username
        return chat

    def _message_json(self, msg: SentMessage, edited: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": self._bot_user(),
            "chat": self._chat(msg.chat_id),
            "date": msg.date,
        }
        if edited:
            out["edit_date"] = int(time.time())
        if msg.kind == "text":
            out["text"] = _plain(msg.text or "", msg.parse_mode)
        elif msg.kind == "photo":
            out["photo"] = _photo_sizes(msg)
        else:
            out["document"] = {
                "file_id": f"doc-{msg.chat_id}-{msg.message_id}",
                "file_unique_id": f"udoc{msg.chat_id}{msg.message_id}",
                "file_name": msg.filename,
                "file_size": len(msg.document or b""),
            }
        if msg.media_group_id is not None:
            out["media_group_id"] = msg.media_group_id
        if msg.caption:
            out["caption"] = _plain(msg.caption, msg.parse_mode)
        if msg.reply_markup:
            out["reply_markup"] = msg.reply_markup
        return out


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _not_modified() -> _ApiError:
    return _ApiError(
        400,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message",
    )


def _error(
    status: int, description: str, parameters: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


def _lower(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.lower() for m in methods)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Query string, JSON body, urlencoded or multipart form -> (params, uploaded files by field name).

    aiogram sends JSON-encoded values for everything that is not a string, so non-text fields are decoded."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    raw: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    raw[f"_filename_{key}"] = value.filename
                else:
                    raw[key] = value
    for key, value in raw.items():
        params[key] = value if key in STRING_FIELDS or key.startswith("_") else _decode(value)
    return params, files


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _chat_id(params: dict[str, Any]) -> int:
    try:
        return int(params["chat_id"])
    except (KeyError, TypeError, ValueError):
        raise _ApiError(400, "Bad Request: chat not found") from None


def _check_text(text: Any) -> None:
    if not isinstance(text, str) or not text.strip():
        raise _ApiError(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT:
        raise _ApiError(400, "Bad Request: message is too long")


def _check_caption(caption: Any) -> None:
    if caption is not None and len(str(caption)) > MAX_CAPTION:
        raise _ApiError(400, "Bad Request: message caption is too long")


def _attachment(params: dict[str, Any], files: dict[str, bytes], name: str) -> bytes:
    """The uploaded bytes for field `name` ("attach://key" points at a multipart part, as aiogram sends it)."""
    ref = params.get(name)
    if isinstance(ref, str) and ref.startswith("attach://"):
        key = ref.removeprefix("attach://")
        if key in files:
            params[f"_filename_{name}"] = params.get(f"_filename_{key}")
            return files[key]
        raise _ApiError(400, f"Bad Request: there is no {name} in the request (attach://{key} has no upload)")
    if name in files:
        return files[name]
    if isinstance(ref, str) and ref:
        return b""  # a file_id or URL: nothing uploaded
    raise _ApiError(400, f"Bad Request: there is no {name} in the request")


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    """Only inline keyboards are echoed back on a message (reply keyboards are not)."""
    if isinstance(markup, str):
        markup = _decode(markup)
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        return markup
    return None


def _plain(text: str, parse_mode: str | None) -> str:
    """What Telegram returns as `text`: the formatting stripped (entities are not reproduced)."""
    if parse_mode and parse_mode.upper() == "HTML":
        return html.unescape(_TAG.sub("", text))
    return text


def _photo_sizes(msg: SentMessage) -> list[dict[str, Any]]:
    data = msg.photo or b""
    width, height = struct.unpack(">II", data[16:24]) if data[:8] == b"\x89PNG\r\n\x1a\n" else (1, 1)
    return [
        {
            "file_id": f"photo-{msg.chat_id}-{msg.message_id}",
            "file_unique_id": f"uph{msg.chat_id}{msg.message_id}",
            "width": width,
            "height": height,
            "file_size": len(data),
        }
    ]


def _scope_key(params: dict[str, Any]) -> str:
    scope = params.get("scope") or {"type": "default"}
    return f"{json.dumps(scope, sort_keys=True)}|{params.get('language_code') or ''}"


def local_session(base_url: str) -> Any:
    """`AiohttpSession(api=TelegramAPIServer.from_base(base_url))`, minus the 0.25 s pause its close() takes
    to let TLS connections wind down (there is no TLS on 127.0.0.1); keeps test teardown fast."""
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    class _LocalSession(AiohttpSession):
        async def close(self) -> None:
            if self._session is not None and not self._session.closed:
                await self._session.close()

    return _LocalSession(api=TelegramAPIServer.from_base(base_url))


@contextlib.asynccontextmanager
async def running_fake_telegram(**kwargs: Any) -> AsyncIterator[FakeTelegramServer]:
    """`async with running_fake_telegram() as server:` — started on a free port, stopped afterwards."""
    server = FakeTelegramServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
