"""The fake Telegram Bot API against the real aiogram Bot and Dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from charts.style import PNG_SIGNATURE, no_data_png
from tests.fake_telegram import FakeTelegramServer, running_fake_telegram

CHAT = 777
USER = 777

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="Approve", callback_data="ok:1"),
            InlineKeyboardButton(text="Reject", callback_data="no:1"),
        ]
    ]
)


@pytest.fixture
async def bot(fake_telegram: FakeTelegramServer) -> AsyncIterator[Bot]:
    bot = fake_telegram.bot()
    yield bot
    await bot.session.close()


# ---------------------------------------------------------------- Bot -> fake


async def test_get_me(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    me = await bot.get_me()
    assert me.id == fake_telegram.bot_id and me.is_bot and me.username == "xau_test_bot"


async def test_send_message_returns_a_real_message(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    first = await bot.send_message(
        CHAT, "<b>Balance</b> $1,000 &amp; up", parse_mode="HTML", reply_markup=KEYBOARD
    )
    second = await bot.send_message(CHAT, "plain")
    assert isinstance(first, Message)
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.chat.id == CHAT and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.id == fake_telegram.bot_id
    assert first.text == "Balance $1,000 & up"  # Telegram returns the text without its markup
    assert first.reply_markup is not None and first.reply_markup.model_dump() == KEYBOARD.model_dump()
    assert second.reply_markup is None
    sent = fake_telegram.sent_messages(CHAT)
    assert [m.text for m in sent] == ["<b>Balance</b> $1,000 &amp; up", "plain"]  # raw, as the bot sent it
    assert sent[0].parse_mode == "HTML"
    assert [b["callback_data"] for b in sent[0].buttons] == ["ok:1", "no:1"]
    assert fake_telegram.sent_messages(CHAT + 1) == []
    call = await fake_telegram.wait_for("sendMessage", lambda c: c.params["text"] == "plain")
    assert call.params["chat_id"] == CHAT and call.ok


async def test_message_ids_are_per_chat_and_shared_with_user_messages(
    bot: Bot, fake_telegram: FakeTelegramServer
) -> None:
    update = fake_telegram.push_message(USER, CHAT, "hello")
    assert update["message"]["message_id"] == 1
    assert (await bot.send_message(CHAT, "a")).message_id == 2
    assert (await bot.send_message(CHAT + 1, "b")).message_id == 1


async def test_send_photo_keeps_the_uploaded_bytes(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    png = no_data_png()
    msg = await bot.send_photo(CHAT, BufferedInputFile(png, "chart.png"), caption="XAUUSD M15")
    assert msg.photo is not None and msg.photo[-1].width == 600 and msg.photo[-1].height == 300
    assert msg.caption == "XAUUSD M15"
    (stored,) = fake_telegram.sent_messages(CHAT)
    assert stored.kind == "photo" and stored.photo == png and stored.photo[:8] == PNG_SIGNATURE


async def test_send_document(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    msg = await bot.send_document(CHAT, BufferedInputFile(b"a,b\n1,2\n", "trades.csv"))
    assert msg.document is not None and msg.document.file_name == "trades.csv" and msg.document.file_size == 8
    assert fake_telegram.sent_messages(CHAT)[0].document == b"a,b\n1,2\n"


async def test_edit_text_and_markup(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    msg = await bot.send_message(CHAT, "Approve +0.5 % risk?", reply_markup=KEYBOARD)
    edited = await bot.edit_message_reply_markup(chat_id=CHAT, message_id=msg.message_id, reply_markup=None)
    assert isinstance(edited, Message) and edited.reply_markup is None and edited.edit_date is not None
    edited = await bot.edit_message_text("Approved by @trader", chat_id=CHAT, message_id=msg.message_id)
    assert isinstance(edited, Message) and edited.text == "Approved by @trader"
    stored = fake_telegram.sent_messages(CHAT)[0]
    assert (stored.text, stored.reply_markup, stored.edits) == ("Approved by @trader", None, 2)


async def test_edit_text_without_markup_drops_the_keyboard(
    bot: Bot, fake_telegram: FakeTelegramServer
) -> None:
    msg = await bot.send_message(CHAT, "Retraining 10 %", reply_markup=KEYBOARD)
    await bot.edit_message_text("Retraining 50 %", chat_id=CHAT, message_id=msg.message_id)
    assert fake_telegram.sent_messages(CHAT)[0].reply_markup is None


async def test_edit_errors_like_telegram(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    msg = await bot.send_message(CHAT, "same")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("same", chat_id=CHAT, message_id=msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=99)
    assert await bot.delete_message(CHAT, msg.message_id) is True
    assert fake_telegram.sent_messages(CHAT)[0].deleted
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("after delete", chat_id=CHAT, message_id=msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(CHAT, msg.message_id)


async def test_text_limits(bot: Bot) -> None:
    await bot.send_message(CHAT, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="text is empty"):
        await bot.send_message(CHAT, "   ")


async def test_commands_menu_round_trip(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    commands = [
        BotCommand(command="status", description="Account and risk"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands) is True
    assert [c["command"] for c in fake_telegram.commands['{"type": "default"}|']] == ["status", "help"]
    assert [c.model_dump() for c in await bot.get_my_commands()] == [c.model_dump() for c in commands]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])


async def test_delete_webhook(bot: Bot) -> None:
    assert await bot.delete_webhook(drop_pending_updates=True) is True


async def test_429_mode_then_recovery(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    fake_telegram.rate_limit(count=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as info:
            await bot.send_message(CHAT, "storm")
        assert info.value.retry_after == 3
    assert (await bot.send_message(CHAT, "through")).message_id == 1  # refused calls created no message
    statuses = [c.status for c in fake_telegram.calls_to("sendMessage")]
    assert statuses == [429, 429, 200]


async def test_fail_next_targets_one_method(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    fake_telegram.fail_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    await bot.send_message(CHAT, "unaffected")
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(CHAT, BufferedInputFile(no_data_png(), "c.png"))
    await bot.send_photo(CHAT, BufferedInputFile(no_data_png(), "c.png"))


async def test_wrong_token_is_unauthorized(fake_telegram: FakeTelegramServer) -> None:
    bot = fake_telegram.bot(token="123:wrong")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()
    finally:
        await bot.session.close()


async def test_plain_http_get_and_unknown_method(fake_telegram: FakeTelegramServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake_telegram.base_url}/bot{fake_telegram.token}/getMe") as resp:
            assert resp.status == 200 and (await resp.json())["result"]["username"] == "xau_test_bot"
        async with http.post(f"{fake_telegram.base_url}/bot{fake_telegram.token}/sendDice", json={}) as resp:
            assert resp.status == 404 and (await resp.json())["ok"] is False


async def test_get_updates_offset_confirms_updates(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    fake_telegram.push_message(USER, CHAT, "/start")
    fake_telegram.push_message(USER, CHAT, "/status now")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [1, 2]
    assert updates[1].message is not None and updates[1].message.text == "/status now"
    assert updates[1].message.entities is not None and updates[1].message.entities[0].length == len("/status")
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [1, 2]  # not confirmed yet
    assert [u.update_id for u in await bot.get_updates(offset=2, timeout=0)] == [2]
    assert await bot.get_updates(offset=3, timeout=0) == []


async def test_long_poll_wakes_on_push(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    fake_telegram.push_message(USER, CHAT, "hi")
    updates = await asyncio.wait_for(poll, 2)
    assert len(updates) == 1


async def test_wait_for_times_out_with_what_it_saw(bot: Bot, fake_telegram: FakeTelegramServer) -> None:
    await bot.send_message(CHAT, "a")
    with pytest.raises(
        TimeoutError, match=r"no matching sendPhoto call within 0.1 s; calls seen: \['sendMessage'\]"
    ):
        await fake_telegram.wait_for("sendPhoto", timeout=0.1)


async def test_context_manager_gives_a_fresh_server() -> None:
    async with running_fake_telegram(bot_username="other_bot") as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        bot = server.bot()
        try:
            assert (await bot.get_me()).username == "other_bot"
        finally:
            await bot.session.close()


# ---------------------------------------------------------------- Dispatcher polling against the fake


def tiny_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Hello, {message.from_user.first_name}!", reply_markup=KEYBOARD)  # type: ignore[union-attr]

    @router.message(Command("chart"))
    async def chart(message: Message) -> None:
        await message.answer_photo(BufferedInputFile(no_data_png(), "chart.png"), caption="chart")

    @router.callback_query(F.data.startswith("ok:"))
    async def approve(query: CallbackQuery) -> None:
        if isinstance(query.message, InaccessibleMessage) or query.message is None:
            await query.answer("This button has expired", show_alert=True)
            return
        await query.message.edit_text("Approved")  # type: ignore[union-attr]
        await query.answer("Done")

    return router


@contextlib.asynccontextmanager
async def polling(server: FakeTelegramServer) -> AsyncIterator[Dispatcher]:
    dp = Dispatcher()
    dp.include_router(tiny_router())
    bot = server.bot()
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=2))
    try:
        yield dp
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(task, 5)


async def test_dispatcher_replies_to_start_via_polling(fake_telegram: FakeTelegramServer) -> None:
    async with polling(fake_telegram):
        fake_telegram.push_message(USER, CHAT, "/start", first_name="Budi")
        call = await fake_telegram.wait_for("sendMessage", timeout=5)
        assert call.params["chat_id"] == CHAT and call.params["text"] == "Hello, Budi!"
        fake_telegram.push_message(USER, CHAT, "/chart")
        photo = await fake_telegram.wait_for("sendPhoto", timeout=5)
        assert photo.ok and fake_telegram.sent_messages(CHAT)[-1].photo == no_data_png()
    assert [c.method for c in fake_telegram.calls[:1]] == ["getMe"]
    # the bot confirmed the first update: the next poll asked for offset 2
    assert any(c.params.get("offset") == 2 for c in fake_telegram.calls_to("getUpdates"))


async def test_dispatcher_handles_a_button_press(fake_telegram: FakeTelegramServer) -> None:
    async with polling(fake_telegram):
        fake_telegram.push_message(USER, CHAT, "/start")
        sent = await fake_telegram.wait_for("sendMessage")
        message_id = sent.result["message_id"]
        fake_telegram.push_callback(USER, CHAT, "ok:1", message_id)
        answer = await fake_telegram.wait_for("answerCallbackQuery")
        assert answer.ok and answer.params["text"] == "Done"
        msg = fake_telegram.sent_messages(CHAT)[0]
        assert (msg.text, msg.reply_markup) == ("Approved", None)

        # a press on a message the bot never sent (or one too old) arrives as an inaccessible message
        fake_telegram.push_callback(USER, CHAT, "ok:2", 4242)
        expired = await fake_telegram.wait_for(
            "answerCallbackQuery", lambda c: c.params.get("show_alert") is True
        )
        assert expired.params["text"] == "This button has expired"


async def test_answer_to_an_unknown_query_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("nope")
