"""A real TradingEngine over the paper broker, a real Journal, and the controller polling the fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.context import BotContext
from bot.store import Journal
from bot.telegram import Polling, build_dispatcher, start_polling
from tests.engine_fixtures import NOW, analysis
from tests.fake_telegram import ApiCall, FakeTelegramServer, SentMessage
from trading.broker.paper import PaperBroker
from trading.domain import Side, Tick
from trading.engine import TradingEngine
from trading.records import MemoryRecorder
from trading.timezones import utc_now

USER = 111
CHAT = 111
OTHER = 999
SECOND_ADMIN = 222


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def settings(**overrides: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(
        telegram_token=None,
        telegram_allowed_users=[USER, SECOND_ADMIN],
        telegram_api_url=None,
        telegram_chat_id=CHAT,
        notify_chat_id=CHAT,
        approval_ttl_minutes=10,
    )
    base.update(overrides)
    return SimpleNamespace(**base)


async def make_engine(clock: Clock, open_positions: int = 0) -> TradingEngine:
    broker = PaperBroker(balance=10_000.0)
    await broker.connect()
    broker.set_tick(Tick(clock.now - timedelta(minutes=30), 3300.0, 3300.25))
    for _ in range(open_positions):
        await broker.open_market(Side.BUY, 0.01, 3290.0, 3320.0, comment="test")
    broker.set_tick(Tick(clock.now, 3301.0, 3301.25))
    engine = TradingEngine(
        broker,
        lambda bars: analysis(),
        recorder=MemoryRecorder(),
        clock=clock,
        approval_ttl=timedelta(minutes=10),
    )
    await engine.start()
    await engine.on_tick()  # positions with current prices, account
    return engine


@dataclass
class Harness:
    server: FakeTelegramServer
    ctx: BotContext
    engine: TradingEngine
    journal: Journal
    clock: Clock
    polling: Polling

    async def send(self, text: str, user: int = USER, chat: int | None = None) -> ApiCall:
        """Push a message and wait for the bot's first sendMessage/sendPhoto to that chat."""
        chat = chat if chat is not None else user
        since = len(self.server.calls)
        self.server.push_message(user, chat, text)
        return await self.wait_sent(chat, since)

    async def wait_sent(self, chat: int, since: int, timeout: float = 5.0) -> ApiCall:
        def sent_to_chat(c: ApiCall) -> bool:
            return (
                c.method.lower() in ("sendmessage", "sendphoto", "senddocument")
                and c.params.get("chat_id") == chat
            )

        return await _wait_any(self.server, sent_to_chat, since, timeout)

    async def press(self, data: str, message_id: int, user: int = USER, chat: int = CHAT) -> ApiCall:
        """Push a button press and wait for its answerCallbackQuery."""
        since = len(self.server.calls)
        update = self.server.push_callback(user, chat, data, message_id)
        qid = update["callback_query"]["id"]
        return await self.server.wait_for(
            "answerCallbackQuery", lambda c: c.params.get("callback_query_id") == qid, since=since
        )

    def last(self, chat: int = CHAT) -> SentMessage:
        return self.server.sent_messages(chat)[-1]

    def message(self, message_id: int, chat: int = CHAT) -> SentMessage:
        return self.server.messages[(chat, message_id)]

    async def audits(self, count: int, timeout: float = 3.0) -> list[Any]:
        """Wait until the audit log holds at least `count` entries; newest first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            entries = await self.journal.audit_entries(limit=100)
            if len(entries) >= count or loop.time() > deadline:
                return entries
            await asyncio.sleep(0.02)


async def _wait_any(
    server: FakeTelegramServer, pred: Callable[[ApiCall], bool], since: int, timeout: float
) -> ApiCall:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for call in server.calls[since:]:
            if pred(call):
                return call
        if loop.time() > deadline:
            seen = [c.method for c in server.calls[since:] if c.method.lower() != "getupdates"]
            raise TimeoutError(f"nothing sent within {timeout} s; calls seen: {seen}")
        await asyncio.sleep(0.01)


async def harness(
    server: FakeTelegramServer,
    tmp_path: Path,
    *,
    open_positions: int = 0,
    trainer: Any = None,
    registry: Any = None,
    analyzer: Any = None,
    **setting_overrides: Any,
) -> AsyncIterator[Harness]:
    clock = Clock()
    engine = await make_engine(clock, open_positions)
    journal = Journal(tmp_path / "journal.db")
    await journal.open()
    ctx = BotContext(
        engine=engine,
        journal=journal,
        settings=settings(**setting_overrides),  # type: ignore[arg-type]
        analyzer=analyzer or SimpleNamespace(last_frame=None),
        started=utc_now() - timedelta(hours=2),  # wall time, as the app sets it
        trainer=trainer,
        registry=registry,
    )
    bot = server.bot()
    polling = await start_polling(ctx, bot, dp=build_dispatcher(ctx), polling_timeout=1)
    try:
        yield Harness(server, ctx, engine, journal, clock, polling)
    finally:
        await polling.stop()
        await bot.session.close()
        await journal.close()
