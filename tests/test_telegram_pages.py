"""Issue 23, beyond freqtrade, through aiogram against the fake Bot API: charts as one album
(sendMediaGroup), long tables paged with ◀ n/N ▶ buttons edited in place, coloured buttons."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from bot.backtests import BotBacktester
from charts.style import PNG_SIGNATURE
from handlers.paging import PageTurn, keyboard, paginate
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import CHAT, OTHER, Harness, harness
from tests.test_trader_commands import book
from trading.backtest import BacktestConfig
from trading.domain import Side


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path):
        yield x


async def book_many(h: Harness, n: int) -> None:
    for i in range(n):
        await book(
            h,
            500 + i,
            Side.BUY if i % 2 else Side.SELL,
            (-1) ** i * (3.0 + i),
            "trailing",
            timedelta(hours=1 + i),
        )


# ---------------------------------------------------------------- albums


async def test_equity_sends_the_curve_and_the_daily_pl_as_one_album(h: Harness) -> None:
    for i, eq in enumerate([10_000.0, 10_050.0, 9_980.0, 10_120.0]):
        await h.journal.record_equity(
            h.clock.now - timedelta(days=3) + timedelta(hours=8 * i), 10_000.0, eq, 0
        )
    await book_many(h, 4)
    since = len(h.server.calls)
    h.server.push_message(CHAT, CHAT, "/equity")
    call = await h.server.wait_for("sendMediaGroup", since=since)
    assert call.ok and len(call.params["media"]) == 2 and len(call.result) == 2
    (album,) = h.server.albums(CHAT)
    assert len(album) == 2 and all((m.photo or b"").startswith(PNG_SIGNATURE) for m in album)
    assert "Equity $10,120.00" in (album[0].caption or "") and album[1].caption is None
    assert not h.server.calls_to("sendPhoto")  # one album, not a photo and then another
    entry = next(e for e in await h.audits(1) if e.command == "/equity")
    assert entry.allowed and "daily P/L" in entry.result


async def test_equity_without_closed_trades_is_one_photo(h: Harness) -> None:
    for i, eq in enumerate([10_000.0, 10_050.0]):
        await h.journal.record_equity(h.clock.now + timedelta(minutes=15 * i), 10_000.0, eq, 0)
    call = await h.send("/equity")
    assert call.method == "sendPhoto" and not h.server.albums()


async def test_backtest_report_brings_equity_and_pl_per_trade_as_one_album(
    fake_telegram: FakeTelegramServer, tmp_path: Path, shared_bars: pl.DataFrame
) -> None:
    from charts.distribution import pnl_distribution_chart
    from charts.equity import equity_chart

    bars = shared_bars.tail(200 + 3 * 96)
    async for h in harness(fake_telegram, tmp_path):
        h.ctx.backtester = BotBacktester(
            lambda n: bars.tail(n),
            lambda: BacktestConfig(balance=5_000.0),
            chart=equity_chart,
            distribution=pnl_distribution_chart,
        )
        try:
            await h.send("/backtest 3")
            call = await h.server.wait_for("sendMediaGroup", timeout=90)
            assert call.ok and [m["type"] for m in call.params["media"]] == ["photo", "photo"]
            (album,) = h.server.albums(CHAT)
            assert "Backtest equity, 3.0 calendar days" in (album[0].caption or "")
            assert all(len(m.photo or b"") > 10_000 for m in album)
        finally:
            h.ctx.backtester.close()


async def test_the_fake_refuses_an_album_of_one_and_a_missing_upload(
    fake_telegram: FakeTelegramServer,
) -> None:
    from aiogram.exceptions import TelegramBadRequest
    from aiogram.types import BufferedInputFile, InputMediaPhoto

    bot = fake_telegram.bot()
    try:
        with pytest.raises(TelegramBadRequest, match="2-10"):
            await bot.send_media_group(CHAT, [InputMediaPhoto(media=BufferedInputFile(b"x", "a.png"))])
        with pytest.raises(TelegramBadRequest, match="no media"):
            await bot.send_media_group(
                CHAT, [InputMediaPhoto(media="attach://nothing"), InputMediaPhoto(media="attach://none")]
            )
        assert fake_telegram.albums() == []
    finally:
        await bot.session.close()


async def test_the_console_saves_every_photo_of_an_album(tmp_path: Path) -> None:
    from aiogram import Bot

    from bot.console import ConsoleSession
    from bot.transport import ConsoleTransport
    from handlers.media import send_charts

    out = io.StringIO()
    session = ConsoleSession(ConsoleTransport(out=out, photo_dir=tmp_path), user_id=CHAT)
    bot = Bot("1:console", session=session)
    sent = await send_charts(
        bot, CHAT, [(PNG_SIGNATURE + b"a", "a.png"), (PNG_SIGNATURE + b"b", "b.png")], caption="Equity $1.00"
    )
    assert len(sent) == 2 and len(session.transport.saved) == 2
    assert [p.read_bytes()[-1:] for p in session.transport.saved] == [b"a", b"b"]
    assert out.getvalue().count("Equity $1.00") == 1


# ---------------------------------------------------------------- paging


def test_paginate_repeats_title_column_names_and_closing_lines() -> None:
    from handlers.common import join_sections, table

    rows = [("#", "side", "P/L")] + [(str(i), "BUY", f"+${i}.00") for i in range(60)]
    text = join_sections("📜 <b>TRADES</b> · last 60", table(rows, right=(2,)), "Sum +$1.00", "⏰ 17:00 WIB")
    pages = paginate(text)
    assert len(pages) >= 3
    for page in pages:
        assert page.startswith("📜 <b>TRADES</b> · last 60\n\n<pre>#  side")
        assert (
            page.endswith("Sum +$1.00\n\n⏰ 17:00 WIB") and page.count("<pre>") == page.count("</pre>") == 1
        )
    tickets = [line.split(" ")[0] for p in pages for line in p.split("\n")]
    assert [t for t in tickets if t.isdigit()] == [str(i) for i in range(60)]  # every row once, in order
    assert paginate("short\n<pre>a\nb</pre>") == ["short\n<pre>a\nb</pre>"]


def test_paginate_carries_a_table_over_with_its_caption() -> None:
    from handlers.common import join_sections, table

    parts = [
        f"<b>By {name}</b>\n" + table([("", "n")] + [(f"{name}{i}", str(i)) for i in range(12)])
        for name in ("setup", "session")
    ]
    pages = paginate(join_sections("🏁 <b>PERFORMANCE</b>", *parts, "⏰ 17:00 WIB"))
    assert len(pages) == 2
    second = pages[1]
    assert "By setup" not in second and second.count("<b>By session</b>") == 1
    assert second.index("<b>By session</b>") < second.index("<pre>") and "session11" in second


async def test_trades_are_paged_and_turned_in_place(h: Harness) -> None:
    await book_many(h, 45)
    call = await h.send("/trades 45")
    mid = call.result["message_id"]
    first = h.message(mid)
    assert [b["text"] for b in first.buttons] == ["◀", "1/3", "▶"]
    assert "\n500 " in first.text and "\n544 " not in first.text and len(first.text) < 4096
    assert len(h.server.sent_messages(CHAT)) == 1  # one message, not a wall split in three

    await h.press(first.buttons[2]["callback_data"], mid)  # ▶
    second = h.message(mid)
    assert second.edits == 1 and [b["text"] for b in second.buttons][1] == "2/3"
    assert "500 " not in second.text and second.text.startswith("📜 <b>TRADES</b>")
    await h.press(second.buttons[0]["callback_data"], mid)  # ◀
    assert h.message(mid).text == first.text and h.message(mid).edits == 2
    await h.press(h.message(mid).buttons[0]["callback_data"], mid)  # ◀ on page 1 wraps to the last
    assert [b["text"] for b in h.message(mid).buttons][1] == "3/3"
    answer = await h.press(
        h.message(mid).buttons[1]["callback_data"], mid
    )  # the middle button only says where
    assert answer.params["text"] == "Page 3 of 3" and h.message(mid).edits == 3
    entries = [e for e in await h.audits(6) if e.command == "button:pg"]
    assert {e.result for e in entries} >= {"page 2/3", "page 1/3", "page 3/3"}


async def test_a_strangers_page_press_changes_nothing(h: Harness) -> None:
    await book_many(h, 45)
    mid = (await h.send("/trades 45")).result["message_id"]
    before = h.message(mid).text
    refused = await h.press(PageTurn(page=1).pack(), mid, user=OTHER, chat=CHAT)
    assert refused.params["text"] == "not allowed"
    assert h.message(mid).text == before and h.message(mid).edits == 0
    entry = next(e for e in await h.audits(2) if e.command == "button:pg")
    assert not entry.allowed and entry.user_id == OTHER


async def test_a_list_no_longer_kept_says_so_and_loses_its_buttons(h: Harness) -> None:
    await book_many(h, 45)
    mid = (await h.send("/trades 45")).result["message_id"]
    h.ctx.paged_lists.clear()  # as after a restart
    answer = await h.press(PageTurn(page=1).pack(), mid)
    assert "no longer kept" in answer.params["text"] and h.message(mid).buttons == []


async def test_logs_open_on_the_newest_page(h: Harness) -> None:
    import logging

    from bot.logbuffer import LogBuffer

    buffer = LogBuffer(capacity=200)
    log = logging.getLogger("test.pages")
    log.addHandler(buffer)
    log.setLevel(logging.INFO)
    try:
        for i in range(80):
            log.info("line %03d of a long log, with enough words to wrap on a phone screen", i)
        h.ctx.logs = buffer
        call = await h.send("/logs 80")
        msg = h.message(call.result["message_id"])
        count = int(msg.buttons[1]["text"].split("/")[1])
        assert count > 1 and msg.buttons[1]["text"] == f"{count}/{count}"
        assert "line 079" in msg.text and "line 000" not in msg.text
    finally:
        log.removeHandler(buffer)


async def test_short_replies_stay_without_buttons(h: Harness) -> None:
    await book_many(h, 3)
    call = await h.send("/trades")
    assert h.message(call.result["message_id"]).buttons == []
    assert keyboard(0, 2).inline_keyboard[0][0].callback_data == PageTurn(page=1).pack()


# ---------------------------------------------------------------- coloured buttons


async def test_approval_and_close_buttons_carry_their_colour(
    fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    async for h in harness(fake_telegram, tmp_path, open_positions=1):
        msg = h.message((await h.send("/risk percent 2")).result["message_id"])
        assert [(b["text"], b.get("style")) for b in msg.buttons] == [
            ("Approve", "success"),
            ("Reject", "danger"),
        ]
        ticket = h.engine.snapshot().positions[0].ticket
        ask = h.message((await h.send(f"/close {ticket}")).result["message_id"])
        assert [(b["text"], b.get("style")) for b in ask.buttons] == [
            ("Confirm close", "danger"),
            ("Cancel", None),
        ]


def test_without_the_style_field_the_colour_is_an_emoji(monkeypatch: pytest.MonkeyPatch) -> None:
    import handlers.buttons as buttons

    assert buttons.STYLED  # aiogram 3.31 knows InlineKeyboardButton.style (Bot API 9.4)
    monkeypatch.setattr(buttons, "STYLED", False)
    approve = buttons.styled_button("Approve", "ap:1:1", "success")
    reject = buttons.styled_button("Reject", "ap:1:0", "danger")
    assert (approve.text, approve.style) == ("✅ Approve", None) and reject.text == "❌ Reject"


async def test_the_console_turns_pages_with_its_numbered_buttons(h: Harness, tmp_path: Path) -> None:
    from bot.console import ConsoleController
    from bot.telegram import build_dispatcher
    from bot.transport import ConsoleTransport

    await book_many(h, 45)
    out = io.StringIO()
    console = ConsoleController(
        build_dispatcher(h.ctx), ConsoleTransport(out=out, photo_dir=tmp_path), user_id=CHAT
    )
    await console.handle_line("/trades 45")
    assert "[!1] ◀  [!2] 1/3  [!3] ▶" in out.getvalue()
    await console.handle_line("!3")
    edited = out.getvalue().rsplit("edited", 1)[1]
    assert "[!2] 2/3" in edited and "\n500 " not in edited
