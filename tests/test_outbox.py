"""A Telegram outage loses no must-deliver message: the outbox, retries, the catch-up summary, restarts.

Everything goes through aiogram against the local fake Bot API (tests/fake_telegram.py), which here
refuses connections, answers 500 (JSON), 502 (an HTML page), 400 and 403; the outbox is a real
journal file. Backoffs are shortened so the outages last milliseconds of wall time.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.catchup import SUMMARY_OVER, state_line, summary_html
from bot.notifier import ChatBudget, Notifier
from bot.retry import Backoff
from bot.store import Journal
from bot.store.outbox import OutboxStore
from bot.transport import TelegramTransport, html_to_text
from tests.fake_telegram import FakeTelegramServer
from tests.notify_samples import T0, closed_trade, events, opened_trade
from tests.test_notifier import WallClock as NotifierWallClock
from trading.events import Event, EventBus, EventKind

CHAT = 4242
FAST = Backoff(first=0.005, cap=0.02)


def opened(ticket: int) -> Event:
    return Event(
        EventKind.TRADE_OPENED,
        T0,
        {**events()[EventKind.TRADE_OPENED].data, "trade": replace(opened_trade(), ticket=ticket)},
        f"opened #{ticket}",
    )


def closed(ticket: int, profit: float) -> Event:
    sample = events()[EventKind.TRADE_CLOSED]
    return Event(
        EventKind.TRADE_CLOSED,
        T0,
        {**sample.data, "trade": replace(closed_trade(profit), ticket=ticket)},
        f"closed #{ticket}",
    )


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal(tmp_path / "journal.db") as j:
        yield j


def outbox_rows(journal: Journal) -> list[tuple[int, str, str]]:
    with sqlite3.connect(journal.path) as conn:
        return conn.execute("select id, kind, status from outbox order by id").fetchall()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


def texts(server: FakeTelegramServer) -> list[str]:
    return [html_to_text(m.text or "") for m in server.sent_messages(CHAT)]


def failed_sends(server: FakeTelegramServer) -> int:
    return sum(1 for c in server.calls_to("sendMessage") if not c.ok)


def notifier_for(server: FakeTelegramServer, journal: Journal, **kwargs: object) -> Notifier:
    return Notifier(
        TelegramTransport(server.bot()),
        CHAT,
        outbox=OutboxStore(journal),
        backoff=FAST,
        state_line=lambda: "📊 Now: 1 open (#25 BUY 0.02)",
        **kwargs,
    )  # type: ignore[arg-type]


async def test_refused_then_500_then_502_html_every_trade_is_summarised_by_ticket(
    fake_telegram: FakeTelegramServer, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    bus = EventBus()
    notifier = notifier_for(fake_telegram, journal)
    notifier.attach(bus)
    try:
        bus.publish(opened(10))
        await until(lambda: len(texts(fake_telegram)) == 1)

        await fake_telegram.refuse_connections()  # the API is down: connection refused
        for e in (opened(16), opened(18), closed(10, -20.0)):
            bus.publish(e)
        await until(lambda: notifier.courier.tries >= 3)
        assert fake_telegram.calls_to("sendMessage")[1:] == []  # nothing reached the server

        await fake_telegram.accept_connections()
        fake_telegram.fail_all(500, "Internal Server Error")  # up, but failing with the API's JSON
        for e in (opened(22), closed(16, 5.2)):
            bus.publish(e)
        await until(lambda: failed_sends(fake_telegram) >= 2)

        fake_telegram.fail_all(502, "Bad Gateway", html=True)  # a proxy's HTML page
        failed = failed_sends(fake_telegram)
        for e in (
            opened(25),
            events()[EventKind.SL_MOVED],
            closed(18, 2.4),
            events()[EventKind.SL_MOVED],
            closed(22, -0.2),
        ):
            bus.publish(e)
        await until(lambda: failed_sends(fake_telegram) >= failed + 2)
        assert [r[2] for r in outbox_rows(journal)] == ["sent"] + ["pending"] * 8  # all kept, before any try

        await fake_telegram.heal()
        await until(lambda: notifier.courier.waiting == 0)
    finally:
        await notifier.stop()
        await notifier.transport.bot.session.close()  # type: ignore[attr-defined]

    sent = texts(fake_telegram)
    outbox_rows(journal)
    assert len(sent) == 2 and sent[0].startswith("🟢 LONG (BUY) XAUUSD #10")
    summary = sent[1]
    assert summary.startswith("📬 While Telegram was unreachable (") and "8 messages waited" in summary
    assert "Opened: #16 #18 #22 #25" in summary
    assert "Closed: #10 (-$20.00) #16 (+$5.20) #18 (+$2.40) #22 (-$0.20)" in summary
    assert (
        "Net of these closes: -$12.60" in summary
        and summary.splitlines()[-2] == "📊 Now: 1 open (#25 BUY 0.02)"
    )
    assert "Left out as out of date: 2 SL moves" in summary  # routine news of the outage: the state says it
    assert [r[2] for r in outbox_rows(journal)] == ["sent"] + ["summarised"] * 8
    assert notifier.stats()["summarised"] == 8 and notifier.failed == 0 and notifier.dropped == 0
    # one WARNING when it started, one INFO when it ended, never a traceback
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("Telegram unreachable: TelegramNetworkError:")
    assert "message(s) waiting, retrying" in warnings[0]
    assert (
        sum("Telegram reachable again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
        == 1
    )
    assert not any(r.exc_info for r in caplog.records)
    assert any("the reply was an HTML page (502 Bad Gateway)" in r.getMessage() for r in caplog.records)


async def test_a_short_outage_delivers_every_message_in_order(
    fake_telegram: FakeTelegramServer, journal: Journal
) -> None:
    bus = EventBus()
    notifier = notifier_for(fake_telegram, journal)
    notifier.attach(bus)
    try:
        fake_telegram.fail_all(502, "Bad Gateway", html=True)
        for e in (opened(1), closed(1, 3.0), opened(2)):
            bus.publish(e)
        await until(lambda: failed_sends(fake_telegram) >= 3)
        await fake_telegram.heal()
        await until(lambda: notifier.courier.waiting == 0)
    finally:
        await notifier.stop()
        await notifier.transport.bot.session.close()  # type: ignore[attr-defined]
    assert [t.splitlines()[0] for t in texts(fake_telegram)] == [
        "🟢 LONG (BUY) XAUUSD #1",
        "✅ WIN +$3.00 #1",
        "🟢 LONG (BUY) XAUUSD #2",
    ]
    assert [r[2] for r in outbox_rows(journal)] == ["sent"] * 3


async def test_a_restart_during_the_outage_sends_what_was_kept(
    fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    path = tmp_path / "journal.db"
    async with Journal(path) as journal:
        await fake_telegram.refuse_connections()
        bus = EventBus()
        first = notifier_for(fake_telegram, journal)
        first.attach(bus)
        for e in (opened(7), closed(7, -4.0), opened(8)):
            bus.publish(e)
        await until(lambda: first.courier.tries >= 1)
        await first.stop(timeout=0.1)  # the outage outlasts the run: SIGTERM
        await first.transport.bot.session.close()  # type: ignore[attr-defined]
        assert [r[2] for r in outbox_rows(journal)] == ["pending"] * 3
    assert fake_telegram.sent_messages(CHAT) == []

    await fake_telegram.heal()
    async with Journal(path) as journal:
        second = notifier_for(fake_telegram, journal)
        assert await second.restore() == 3
        bus = EventBus()
        second.attach(bus)
        bus.publish(opened(9))  # the new run's own messages come after the kept ones
        try:
            await until(lambda: len(texts(fake_telegram)) == 4)
        finally:
            await second.stop()
            await second.transport.bot.session.close()  # type: ignore[attr-defined]
        assert [t.splitlines()[0] for t in texts(fake_telegram)] == [
            "🟢 LONG (BUY) XAUUSD #7",
            "❌ LOSS -$4.00 #7",
            "🟢 LONG (BUY) XAUUSD #8",
            "🟢 LONG (BUY) XAUUSD #9",
        ]
        assert [r[2] for r in outbox_rows(journal)] == ["sent"] * 4
        assert await second.restore() == 0  # nothing is sent twice


async def test_many_kept_over_a_restart_become_one_summary(
    fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    path = tmp_path / "journal.db"
    async with Journal(path) as journal:
        store = OutboxStore(journal)
        for n in range(SUMMARY_OVER + 2):  # as a run killed during an outage leaves them
            e = closed(100 + n, 1.0)
            from bot.messages import render_event

            await store.add(CHAT, e.kind.value, render_event(e).html, meta={"ticket": 100 + n, "profit": 1.0})  # type: ignore[union-attr]
        notifier = notifier_for(fake_telegram, journal)
        assert await notifier.restore() == SUMMARY_OVER + 2
        notifier.start()
        try:
            await until(lambda: notifier.courier.waiting == 0)
        finally:
            await notifier.stop()
            await notifier.transport.bot.session.close()  # type: ignore[attr-defined]
        (summary,) = texts(fake_telegram)
        assert "Closed: " + " ".join(f"#{100 + n} (+$1.00)" for n in range(SUMMARY_OVER + 2)) in summary
        assert {r[2] for r in outbox_rows(journal)} == {"summarised"}


async def test_final_refusals_are_not_retried_forever(
    fake_telegram: FakeTelegramServer, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """400 about the HTML: once more as plain text; 403 (bot blocked): recorded as failed, one line."""
    bus = EventBus()
    notifier = notifier_for(fake_telegram, journal)
    notifier.attach(bus)
    try:
        fake_telegram.fail_next("sendMessage", 400, "Bad Request: can't parse entities: unclosed tag")
        bus.publish(opened(1))
        await until(lambda: notifier.courier.waiting == 0 and len(texts(fake_telegram)) == 1)
        fake_telegram.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        bus.publish(opened(2))
        bus.publish(opened(3))
        await until(lambda: notifier.courier.waiting == 0 and len(texts(fake_telegram)) == 2)
    finally:
        await notifier.stop()
        await notifier.transport.bot.session.close()  # type: ignore[attr-defined]
    plain, after = fake_telegram.sent_messages(CHAT)
    assert plain.parse_mode is None and plain.text.startswith("🟢 LONG (BUY) XAUUSD #1")  # type: ignore[union-attr]
    assert after.text.startswith("🟢 <b>LONG (BUY)</b>") and "#3" in after.text  # type: ignore[union-attr]
    assert [r[2] for r in outbox_rows(journal)] == ["sent", "failed", "sent"]
    assert len(fake_telegram.calls_to("sendMessage")) == 4  # 400, plain, 403, #3: nothing retried in a loop
    refused = [r.getMessage() for r in caplog.records if "for good" in r.getMessage()]
    assert (
        len(refused) == 1
        and "bot was blocked by the user" in refused[0]
        and "kept in the outbox" in refused[0]
    )
    assert notifier.failed == 1


class WallClock(NotifierWallClock):
    """The notifier tests' fake clock, whose sleep also lets the other tasks run."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        await asyncio.sleep(0)


async def test_the_per_minute_budget_never_holds_trades_back(
    fake_telegram: FakeTelegramServer, journal: Journal
) -> None:
    """30 trades and 30 SL moves in a burst, 5 messages a minute: the trades go at one a second while
    running (not in the stop drain); SL moves over the budget are skipped and said once."""
    clock = WallClock()
    bus = EventBus()
    notifier = notifier_for(
        fake_telegram, journal, budget=ChatBudget(per_minute=5), wall_clock=clock, sleep=clock.sleep
    )
    notifier.attach(bus)
    sl = events()[EventKind.SL_MOVED]
    try:
        for n in range(30):
            bus.publish(opened(n))
            bus.publish(sl)
        await until(lambda: sum("XAUUSD #" in t for t in texts(fake_telegram)) == 30)  # all out before stop()
    finally:
        await notifier.stop()
        await notifier.transport.bot.session.close()  # type: ignore[attr-defined]
    assert max(clock.waits) <= 1.0  # paced at one a second, never the minute's wait
    heads = [t.splitlines()[0] for t in texts(fake_telegram)]
    assert [h for h in heads if h.startswith("🟢")] == [f"🟢 LONG (BUY) XAUUSD #{n}" for n in range(30)]
    assert sum(h.startswith("🔕 SL moves come faster") for h in heads) == 1
    assert notifier.over_budget["sl_moved"] > 0


def test_summary_text_and_state_line() -> None:
    from types import SimpleNamespace

    from bot.catchup import Waiting

    html = summary_html(
        [
            Waiting("trade_opened", "x", T0, {"ticket": 5}),
            Waiting("limit_hit", "⛔ <b>DAILY LIMIT</b> &amp; stop\nmore", T0, {}),
        ]
    )
    assert "(13:30–13:30 WIB), 2 messages waited" in html and "🟢 Opened: #5" in html
    assert "Also: ⛔ DAILY LIMIT &amp; stop" in html
    snap = SimpleNamespace(
        positions=[SimpleNamespace(ticket=3, side="SELL", volume=0.05)],
        account=SimpleNamespace(balance=4987.6, equity=4990.1),
        paused=True,
    )
    assert state_line(snap) == (
        "📊 <b>Now:</b> 1 open (#3 SELL 0.05); balance $4,987.60, equity $4,990.10; entries paused"
    )


async def test_a_chart_with_a_long_caption_waits_out_an_outage_too(fake_telegram: FakeTelegramServer) -> None:
    from charts.style import no_data_png

    notifier = Notifier(TelegramTransport(fake_telegram.bot()), CHAT, backoff=FAST)
    notifier.start()
    try:
        fake_telegram.fail_all(500, "Internal Server Error")
        notifier.notify_photo(no_data_png(), "<b>daily</b>\n" + "x" * 1100, kind="daily")
        await until(
            lambda: failed_sends(fake_telegram) == 0 and len(fake_telegram.calls_to("sendPhoto")) >= 2
        )
        fake_telegram.fail_all(
            502, "Bad Gateway", html=True, methods=["sendMessage"]
        )  # the photo goes, its text not
        await until(lambda: len(fake_telegram.calls_to("sendPhoto")) >= 3)
        await until(lambda: failed_sends(fake_telegram) >= 2)
        await fake_telegram.heal()
        await until(lambda: notifier.courier.waiting == 0)
    finally:
        await notifier.stop()
        await notifier.transport.bot.session.close()  # type: ignore[attr-defined]
    photo, caption = fake_telegram.sent_messages(CHAT)
    assert photo.kind == "photo" and not photo.caption and caption.text == "<b>daily</b>\n" + "x" * 1100
    assert [c.ok for c in fake_telegram.calls_to("sendPhoto")].count(True) == 1  # the photo went once


async def test_the_app_keeps_a_stopped_runs_messages_and_summarises_them_after_restart(
    tmp_path: Path, fake_telegram: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real App: Telegram goes down, trades close, SIGTERM; Telegram comes back, the bot restarts:
    one summary names every ticket (and the BOT STOPPED it could not send), then BOT STARTED."""
    import os

    from tests.test_app import make_settings, started

    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)
    settings = make_settings(
        tmp_path,
        telegram_token=fake_telegram.token,
        telegram_api_url=fake_telegram.base_url,
        telegram_allowed_users=[42],
    )
    original_stop = Notifier.stop

    async def short_stop(self: Notifier, timeout: float = 10.0) -> None:
        await original_stop(self, timeout=min(timeout, 0.3))  # a test cannot wait out 10 s of outage

    monkeypatch.setattr(Notifier, "stop", short_stop)
    app = await started(settings)
    try:
        await fake_telegram.wait_for("sendMessage", lambda c: "BOT STARTED" in c.params.get("text", ""))
        app.notifier.courier.backoff = FAST
        await fake_telegram.refuse_connections()
        for n in range(SUMMARY_OVER + 2):
            app.bus.publish(closed(500 + n, -1.5))
        await until(lambda: app.notifier.courier.tries >= 1)
    finally:
        await app.shutdown("stopped by signal")
    await fake_telegram.heal()
    before = len(fake_telegram.sent_messages(42))

    again = await started(settings)
    try:
        after = await fake_telegram.wait_for(
            "sendMessage", lambda c: "BOT STARTED" in c.params.get("text", ""), since=len(fake_telegram.calls)
        )
    finally:
        await again.shutdown("test")
    sent = [html_to_text(m.text or "") for m in fake_telegram.sent_messages(42)[before:]]
    summary = next(t for t in sent if t.startswith("📬"))
    assert "Closed: " + " ".join(f"#{500 + n} (-$1.50)" for n in range(SUMMARY_OVER + 2)) in summary
    assert "Also: 🔴 BOT STOPPED" in summary and "📊 Now: 0 open; balance $" in summary
    assert sent.index(summary) < next(i for i, t in enumerate(sent) if "BOT STARTED" in t)
    assert after.ok


def test_polling_failures_log_one_warning_per_outage_and_the_recovery_nudges(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot import polling_log

    log = logging.getLogger(polling_log.DISPATCHER_LOGGER)
    for existing in list(log.filters):  # a clean one (the App installs it too)
        log.removeFilter(existing)
    log.setLevel(logging.WARNING)  # as main.py leaves aiogram
    caplog.set_level(logging.INFO)  # the app's LOG_LEVEL
    quiet = polling_log.install()
    assert polling_log.install() is quiet and log.level == logging.INFO  # once; opened to see the recovery
    nudged: list[int] = []
    quiet.on_recovery = lambda: nudged.append(1)
    for _outage in range(2):
        log.info("Start polling")  # below the level aiogram had: still held back
        for tries in range(5):
            log.error("Failed to fetch updates - %s: %s", "TelegramNetworkError", "Server disconnected")
            log.warning("Sleep for %f seconds and try again... (tryings = %d, bot id = %d)", 1.0, tries, 5)
        log.info("Connection established (tryings = %d, bot id = %d)", 5, 5)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == polling_log.DISPATCHER_LOGGER]
    assert (
        lines
        == [
            (
                "WARNING",
                "Telegram polling: Failed to fetch updates - TelegramNetworkError: Server "
                "disconnected; retrying quietly until it is back",
            ),
            ("INFO", "Connection established (tryings = 5, bot id = 5)"),
        ]
        * 2
    )
    assert quiet.dropped == 18 and not quiet.down and nudged == [1, 1]
    log.removeFilter(quiet)
    log.setLevel(logging.NOTSET)


async def test_a_nudge_ends_the_backoff_wait_at_once(
    fake_telegram: FakeTelegramServer, journal: Journal
) -> None:
    """Polling got through again: the courier retries now, not at the end of a long backoff."""
    bus = EventBus()
    notifier = notifier_for(fake_telegram, journal)
    notifier.courier.backoff = Backoff(first=30.0, cap=30.0)
    notifier.attach(bus)
    try:
        await fake_telegram.refuse_connections()
        bus.publish(opened(1))
        await until(lambda: notifier.courier.tries == 1)
        await fake_telegram.heal()
        notifier.courier.nudge()
        await until(lambda: len(texts(fake_telegram)) == 1, timeout=5)
    finally:
        await notifier.stop()
        await notifier.transport.bot.session.close()  # type: ignore[attr-defined]


async def test_an_approval_card_waits_out_an_outage_until_its_request_expires(
    fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    """The approval request (a card with buttons, not an outbox message) is retried through the outage."""
    from bot.retry import keep_trying
    from tests.telegram_fixtures import CHAT as ADMIN_CHAT
    from tests.telegram_fixtures import harness
    from trading.risk.approvals import RiskChange

    async def fast(send: Callable[[], object], what: str, wanted: Callable[[], bool]) -> object:
        return await keep_trying(send, what=what, wanted=wanted, backoff=FAST)  # type: ignore[arg-type]

    async for h in harness(fake_telegram, tmp_path):
        h.polling.announcer.retry = fast
        fake_telegram.fail_all(502, "Bad Gateway", html=True, methods=["sendMessage"])
        since = len(fake_telegram.calls)
        result = await h.engine.request_risk_change(
            RiskChange("limits", "max positions 2 → 3", {"max_positions": 3}), by="engine"
        )
        assert result.approval is not None
        await until(lambda: sum(1 for c in fake_telegram.calls_to("sendMessage") if not c.ok) >= 3)
        await fake_telegram.heal()
        call = await fake_telegram.wait_for(
            "sendMessage", lambda c: c.ok and c.params["chat_id"] == ADMIN_CHAT, since=since
        )
        msg = fake_telegram.messages[(ADMIN_CHAT, call.result["message_id"])]
        assert "max positions 2 → 3" in (msg.text or "") and msg.buttons


def test_classify_names_what_can_pass_and_what_cannot() -> None:
    from aiogram.exceptions import (
        ClientDecodeError,
        TelegramBadRequest,
        TelegramEntityTooLarge,
        TelegramForbiddenError,
        TelegramMigrateToChat,
        TelegramNetworkError,
        TelegramRetryAfter,
        TelegramServerError,
    )
    from aiogram.methods import SendMessage

    from bot.transport import classify

    m = SendMessage(chat_id=1, text="x")
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    assert classify(TelegramNetworkError(m, "Request timeout error")).retry
    assert classify(TelegramServerError(m, "Internal Server Error")).retry
    html = classify(ClientDecodeError("Failed to decode object", ValueError("x"), page))
    assert html.retry and html.error == "the reply was an HTML page (502 Bad Gateway)"
    assert classify(TelegramRetryAfter(m, "Too Many Requests", 7)).retry_after == 7.0
    assert classify(TelegramBadRequest(m, "Bad Request: can't parse entities")).plain_may_help
    for final in (
        TelegramBadRequest(m, "Bad Request: chat not found"),
        TelegramForbiddenError(m, "blocked"),
        TelegramEntityTooLarge(m, "too large"),
        TelegramMigrateToChat(m, "moved", -100123),
    ):
        result = classify(final)
        assert not result.retry and result.retry_after is None and not result.plain_may_help, final
    assert "TELEGRAM_CHAT_ID=-100123" in classify(TelegramMigrateToChat(m, "moved", -100123)).error
