"""The notification queue, the transports (fake Bot API and console), split_message and ErrorMonitor."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest

from bot.notifier import ErrorMonitor, Notifier, parse_switches
from bot.retry import Backoff
from bot.transport import ConsoleTransport, TelegramTransport, html_to_text, split_message
from charts.style import PNG_SIGNATURE, no_data_png
from tests.fake_telegram import FakeTelegramServer
from tests.notify_samples import T0, events
from trading.events import Event, EventBus, EventKind

CHAT = 4242


class FakeTransport:
    """Records what was sent; raises on the call numbers in `fail_on` (1-based), optionally slow."""

    def __init__(self, fail_on: set[int] | None = None, delay: float = 0.0) -> None:
        self.sent: list[tuple[str, int, str, bool]] = []
        self.fail_on = fail_on or set()
        self.delay = delay
        self.calls = 0

    async def _record(self, kind: str, chat_id: int, text: str, silent: bool) -> int:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.calls in self.fail_on:
            raise ConnectionError(f"boom on call {self.calls}")
        self.sent.append((kind, chat_id, text, silent))
        return self.calls

    async def send_text(self, chat_id: int, html: str, silent: bool = False) -> int | None:
        return await self._record("text", chat_id, html, silent)

    async def send_photo(
        self, chat_id: int, png: bytes, caption_html: str = "", silent: bool = False
    ) -> int | None:
        return await self._record("photo", chat_id, caption_html, silent)

    async def edit_text(self, chat_id: int, message_id: int, html: str) -> bool:
        await self._record("edit", chat_id, html, False)
        return True

    def texts(self) -> list[str]:
        return [html_to_text(t) for _, _, t, _ in self.sent]


def info(n: int) -> Event:
    return Event(EventKind.INFO, T0, {}, f"message {n}")


# ---------------------------------------------------------------------------------------- Notifier


async def test_sends_bus_events_in_order_and_stop_drains() -> None:
    bus, transport = EventBus(), FakeTransport(delay=0.001)
    notifier = Notifier(transport, CHAT)
    notifier.attach(bus)
    for n in range(30):
        bus.publish(info(n))
    await notifier.stop(timeout=5)
    assert [t.splitlines()[0] for t in transport.texts()] == [f"ℹ️ message {n}" for n in range(30)]
    assert all(chat == CHAT for _, chat, _, _ in transport.sent)
    assert not notifier.running and notifier.stats()["sent"] == 30
    bus.publish(info(99))  # after stop the notifier is no longer subscribed
    await asyncio.sleep(0)
    assert len(transport.sent) == 30


async def test_every_event_kind_goes_out_through_the_worker() -> None:
    bus, transport = EventBus(), FakeTransport()
    notifier = Notifier(transport, CHAT)
    notifier.attach(bus)
    for e in events("<b>").values():
        bus.publish(e)
    bus.publish(Event(EventKind.RISK_CHANGE_PROPOSED, T0, {}, "handled by the approvals handler"))
    await notifier.stop()
    assert len(transport.sent) == len(events())
    assert notifier.skipped == 1 and notifier.failed == 0


async def test_a_transport_exception_is_retried_after_a_backoff_and_nothing_is_skipped() -> None:
    bus, transport = EventBus(), FakeTransport(fail_on={2, 3})
    notifier = Notifier(transport, CHAT, backoff=Backoff(0.001, 0.002))
    notifier.attach(bus)
    for n in range(4):
        bus.publish(info(n))
    await notifier.stop()
    assert [t.splitlines()[0] for t in transport.texts()] == [f"ℹ️ message {n}" for n in range(4)]
    assert notifier.failed == 0 and notifier.sent == 4 and notifier.courier.outages == 1


async def test_a_malformed_event_sends_its_summary_instead() -> None:
    transport = FakeTransport()
    notifier = Notifier(transport, CHAT)
    notifier.start()
    notifier.notify_event(Event(EventKind.TRADE_CLOSED, T0, {}, "closed #5 <oops>"))
    notifier.notify_event(info(1))
    await notifier.stop()
    assert "closed #5 <oops>" in transport.texts()[0] and "message 1" in transport.texts()[1]
    assert notifier.failed == 1


async def test_quiet_kinds_go_silent_and_muted_kinds_are_not_sent() -> None:
    bus, transport = EventBus(), FakeTransport()
    notifier = Notifier(transport, CHAT, quiet_kinds={EventKind.TRADE_OPENED}, muted_kinds={"trade_closed"})
    notifier.attach(bus)
    sample = events()
    for kind in (EventKind.TRADE_OPENED, EventKind.TRADE_CLOSED, EventKind.PAUSED, EventKind.SL_MOVED):
        bus.publish(sample[kind])
    await notifier.stop()
    heads = [
        (t.splitlines()[0], silent)
        for (_, _, _, silent), t in zip(transport.sent, transport.texts(), strict=True)
    ]
    assert heads == [
        ("🟢 LONG (BUY) XAUUSD #1001", True),
        ("⏸ TRADING PAUSED by alice", False),
        ("🛡 SL MOVED #1001", True),
    ]  # SL moves are silent by default
    assert notifier.skipped == 1


async def test_ad_hoc_text_and_photo_keep_their_place_in_the_queue() -> None:
    bus, transport = EventBus(), FakeTransport()
    notifier = Notifier(transport, CHAT)
    notifier.notify_text("<b>queued before attach</b>")
    notifier.attach(bus)
    bus.publish(info(1))
    notifier.notify_photo(no_data_png(), "<b>chart</b>", silent=True)
    notifier.notify_text("line\n" * 2000)  # 10,000 characters -> split
    await notifier.stop()
    kinds = [k for k, _, _, _ in transport.sent]
    assert kinds[:3] == ["text", "text", "photo"] and transport.sent[2][2:] == ("<b>chart</b>", True)
    assert transport.texts()[0] == "queued before attach"
    long_parts = [t for k, _, t, _ in transport.sent[3:]]
    assert len(long_parts) == 3 and all(len(p) <= 4000 for p in long_parts)
    assert "\n".join(long_parts) == "line\n" * 2000


async def test_attach_while_running_moves_the_worker_to_the_bus_queue() -> None:
    bus, transport = EventBus(), FakeTransport()
    notifier = Notifier(transport, CHAT)
    notifier.start()
    await asyncio.sleep(0)  # the worker now waits on the notifier's own queue
    notifier.attach(bus)
    bus.publish(info(7))
    await notifier.stop()
    assert transport.texts()[0].startswith("ℹ️ message 7")


async def test_overflow_drops_the_oldest_and_counts_it() -> None:
    bus, transport = EventBus(maxsize=5), FakeTransport()
    notifier = Notifier(transport, CHAT)
    notifier.attach(bus)
    for n in range(12):  # published synchronously: the worker has not run yet
        bus.publish(info(n))
    await notifier.stop()
    assert bus.dropped == 7 and notifier.stats()["bus_dropped"] == 7
    assert [t.splitlines()[0] for t in transport.texts()] == [f"ℹ️ message {n}" for n in range(7, 12)]


async def test_stop_gives_up_after_the_timeout_and_counts_what_is_left() -> None:
    bus, transport = EventBus(), FakeTransport(delay=0.2)
    notifier = Notifier(transport, CHAT)
    notifier.attach(bus)
    for n in range(5):
        bus.publish(info(n))
    await notifier.stop(timeout=0.05)
    assert not notifier.running and len(transport.sent) == 0
    assert notifier.dropped >= 4  # the one being sent was cancelled, the rest never left


async def test_publish_never_waits_for_a_slow_transport() -> None:
    bus, transport = EventBus(), FakeTransport(delay=10)
    notifier = Notifier(transport, CHAT)
    notifier.attach(bus)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(100):
        bus.publish(info(n))
    elapsed = loop.time() - start
    await notifier.stop(timeout=0.01)
    assert elapsed < 1.0  # generous: publish is synchronous, it never awaits


def test_parse_switches() -> None:
    quiet, muted = parse_switches({"sl_moved": "silent", "INFO": "off", "trade_closed": "on"})
    assert quiet == {EventKind.SL_MOVED} and muted == {EventKind.INFO}
    with pytest.raises(ValueError, match="unknown event kind"):
        parse_switches({"trade_exploded": "on"})
    with pytest.raises(ValueError, match="use one of on, silent, off"):
        parse_switches({"info": "loud"})


# ---------------------------------------------------------------------------------------- split_message


def test_split_message_keeps_every_line_and_stays_under_the_limit() -> None:
    lines = [f"<b>line {n}</b> " + "x" * (n % 97) for n in range(600)]
    text = "\n".join(lines)
    parts = split_message(text)
    assert len(parts) > 1 and all(len(p) < 4096 for p in parts)
    assert "\n".join(parts) == text
    assert [line for p in parts for line in p.split("\n")] == lines


def test_split_message_edges() -> None:
    assert split_message("") == []
    assert split_message("short") == ["short"]
    assert split_message("a\n\nb", limit=2) == ["a\n", "b"]  # blank lines survive too
    long_line = "word " * 2000  # one 10,000-character line is cut on spaces
    parts = split_message(long_line.strip(), limit=4096)
    assert all(len(p) <= 4096 for p in parts) and " ".join(parts).split() == long_line.split()
    assert split_message("x" * 10, limit=4) == ["xxxx", "xxxx", "xx"]
    with pytest.raises(ValueError):
        split_message("x", limit=1)


# ---------------------------------------------------------------------------------------- ErrorMonitor


def test_error_monitor_fires_once_per_burst() -> None:
    published: list[Event] = []
    monitor = ErrorMonitor(published.append, window=timedelta(minutes=5), threshold=20)
    t = T0
    fired = [monitor.record(RuntimeError(f"e{n}"), t + timedelta(seconds=10 * n)) for n in range(40)]
    assert fired.index(True) == 19 and fired.count(True) == 1  # the 20th error within 5 min
    assert len(published) == 1 and published[0].kind is EventKind.ERROR_BURST
    assert published[0].data["count"] == 20 and published[0].data["last_error"] == "RuntimeError: e19"
    # a quiet window later a new burst alerts again
    later = t + timedelta(seconds=390) + timedelta(minutes=5)
    fired = [monitor.record("again", later + timedelta(seconds=n)) for n in range(25)]
    assert fired.count(True) == 1 and len(published) == 2 and monitor.alerts == 2


def test_error_monitor_slow_errors_never_alert_and_bus_variant() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.on(seen.append)
    monitor = ErrorMonitor(bus, window=timedelta(minutes=5), threshold=3)
    for n in range(10):  # one error every 3 minutes: never 3 within 5 minutes
        assert monitor.record("slow", T0 + timedelta(minutes=3 * n)) is False
    assert seen == [] and monitor.in_window(T0 + timedelta(minutes=27)) == 2
    for n in range(3):
        monitor.record("fast", T0 + timedelta(minutes=40, seconds=n))
    assert [e.kind for e in seen] == [EventKind.ERROR_BURST]
    with pytest.raises(ValueError):
        ErrorMonitor(bus, threshold=0)


# ---------------------------------------------------------------------------------------- transports


async def test_telegram_transport_against_the_fake_bot_api(fake_telegram: FakeTelegramServer) -> None:
    bot = fake_telegram.bot()
    try:
        transport = TelegramTransport(bot)
        mid = await transport.send_text(CHAT, "<b>Bal</b> $1,000 &amp; up", silent=True)
        assert mid is not None
        call = fake_telegram.calls_to("sendMessage")[-1]
        assert call.params["parse_mode"] == "HTML" and call.params["disable_notification"] is True
        assert call.params["link_preview_options"]["is_disabled"] is True
        assert await transport.edit_text(CHAT, mid, "<b>edited</b>") is True
        assert await transport.edit_text(CHAT, mid, "<b>edited</b>") is True  # "not modified" is fine
        msg = fake_telegram.messages[(CHAT, mid)]
        assert msg.text == "<b>edited</b>"
        png = no_data_png()
        pid = await transport.send_photo(CHAT, png, "<i>daily</i>")
        photo = fake_telegram.messages[(CHAT, pid)]  # type: ignore[index]
        assert (
            photo.photo is not None
            and photo.photo.startswith(PNG_SIGNATURE)
            and photo.caption == "<i>daily</i>"
        )
        # a caption over Telegram's 1024 goes out as the message after the photo
        long_caption = "<b>report</b>\n" + "x" * 1100
        before = len(fake_telegram.sent_messages(CHAT))
        assert await transport.send_photo(CHAT, png, long_caption) is not None
        photo_msg, text_msg = fake_telegram.sent_messages(CHAT)[before:]
        assert photo_msg.kind == "photo" and not photo_msg.caption and text_msg.text == long_caption
        # errors are logged and dropped, never raised
        fake_telegram.fail_next("sendMessage", 400, "Bad Request: can't parse entities")
        assert await transport.send_text(CHAT, "<b>broken") is None
        assert await transport.edit_text(CHAT, 99999, "x") is False
        assert transport.failures == 2
    finally:
        await bot.session.close()


async def test_telegram_transport_retries_after_429(fake_telegram: FakeTelegramServer) -> None:
    bot = fake_telegram.bot()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    try:
        transport = TelegramTransport(bot, sleep=fake_sleep)
        fake_telegram.rate_limit(count=1, retry_after=3)
        mid = await transport.send_text(CHAT, "after the storm")
        assert mid is not None and slept == [3.0] and transport.retries == 1
        statuses = [c.status for c in fake_telegram.calls_to("sendMessage")]
        assert statuses == [429, 200]
        # a longer storm than the bounded tries: dropped with a log line, no exception
        fake_telegram.rate_limit(count=3, retry_after=1)
        assert await transport.send_text(CHAT, "lost") is None
        assert transport.failures == 1 and slept == [3.0, 1.0, 1.0]
        # a retry_after beyond max_wait is not waited for
        short = TelegramTransport(bot, sleep=fake_sleep, max_wait=2)
        fake_telegram.rate_limit(count=1, retry_after=30)
        assert await short.send_text(CHAT, "too long a wait") is None and slept == [3.0, 1.0, 1.0]
    finally:
        await bot.session.close()


async def test_telegram_transport_survives_a_dead_server() -> None:
    server = FakeTelegramServer()
    await server.start()
    bot = server.bot()
    await server.stop()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    try:
        transport = TelegramTransport(bot, attempts=2, sleep=fake_sleep)
        assert await transport.send_text(CHAT, "nobody listening") is None
        assert slept == [1.0] and transport.failures == 1
    finally:
        await bot.session.close()


async def test_notifier_over_telegram_end_to_end(fake_telegram: FakeTelegramServer) -> None:
    bot = fake_telegram.bot()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    try:
        bus = EventBus()
        notifier = Notifier(TelegramTransport(bot), CHAT, sleep=fake_sleep)  # the notifier waits out a 429
        notifier.attach(bus)
        fake_telegram.rate_limit(count=2, retry_after=1)
        sample = events("<b>")
        bus.publish(sample[EventKind.TRADE_OPENED])
        bus.publish(sample[EventKind.TRADE_CLOSED])
        await notifier.stop()
        sent = fake_telegram.sent_messages(CHAT)
        assert [html_to_text(m.text or "").splitlines()[0] for m in sent] == [
            "🟢 LONG (BUY) XAUUSD #1001",
            "✅ WIN +$12.40 #1001",
        ]
        assert "FVG&lt;b&gt;" in (sent[0].text or "") and slept == [1.0, 1.0]
    finally:
        await bot.session.close()


async def test_console_transport_prints_text_and_saves_photos(tmp_path: Path) -> None:
    out = io.StringIO()
    console = ConsoleTransport(out=out, photo_dir=tmp_path / "photos", clock=lambda: T0)
    first = await console.send_text(CHAT, "<b>Balance</b> &lt;$1,000&gt; &amp; more", silent=True)
    pid = await console.send_photo(CHAT, no_data_png(), "<i>equity</i> chart")
    assert await console.edit_text(CHAT, first, "<code>edited</code>") is True  # type: ignore[arg-type]
    text = out.getvalue()
    assert "── message #1 (silent)\nBalance <$1,000> & more\n" in text
    assert "WIB" not in text  # one clock per message: the message's own clock line
    assert "<b>" not in text and "&amp;" not in text
    files = list((tmp_path / "photos").glob("*.png"))
    assert len(files) == 1 and files[0].read_bytes().startswith(PNG_SIGNATURE)
    assert f"photo #{pid} saved: {files[0]}" in text and "equity chart" in text
    assert "message #1 edited\nedited" in text


async def test_console_transport_never_raises_on_a_bad_photo_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = io.StringIO()
    console = ConsoleTransport(out=out, photo_dir=blocker / "photos")
    assert await console.send_photo(CHAT, b"\x89PNG", "x") is None
    assert "NOT saved" in out.getvalue()


# ---------------------------------------------------------------------------------------- with the engine


async def test_real_engine_events_reach_the_chat_in_order() -> None:
    """The paper broker and the live engine publish; the notifier renders every one of them."""
    import polars as pl

    from tests.engine_fixtures import NOW, analysis
    from trading.broker.paper import PaperBroker
    from trading.domain import Tick
    from trading.engine import TradingEngine

    clock = [NOW]
    broker = PaperBroker(feed=None, balance=1000.0)
    await broker.connect()
    broker.set_tick(Tick(NOW, 3299.9, 3300.1))
    bus, transport = EventBus(), FakeTransport()
    notifier = Notifier(transport, CHAT)
    notifier.attach(bus)
    engine = TradingEngine(broker, lambda _bars: analysis(), bus=bus, clock=lambda: clock[0])
    await engine.start()
    decision = await engine.on_bar(pl.DataFrame())
    assert decision.action == "enter", decision.reason
    clock[0] = NOW + timedelta(minutes=20)
    broker.set_tick(Tick(clock[0], 3280.0, 3280.2))  # through the stop: a broker-side close
    await engine.on_tick()
    await engine.pause("alice")
    await notifier.stop()
    heads = [t.splitlines()[0] for t in transport.texts()]
    assert heads[0].startswith("🟢 LONG (BUY) XAUUSD #")
    assert heads[1].startswith("❌ LOSS -$") and heads[-1] == "⏸ TRADING PAUSED by alice"
    closed_text = transport.texts()[1]
    assert "stop-loss hit at the broker" in closed_text and "Duration: 20m" in closed_text
    # the engine passes the post-close balance as "before" for broker-side closes; the message mends it
    assert "Before: $1,000.00" in closed_text and "After: $979.90 (-$20.10)" in closed_text
    assert notifier.failed == 0


# ---------------------------------------------------------------------------------------- chat budget


class WallClock:
    """A fake monotonic clock; sleeping advances it (and records the waits)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def budgeted(transport: FakeTransport, clock: WallClock, **budget: float) -> Notifier:
    from bot.notifier import ChatBudget

    return Notifier(transport, CHAT, budget=ChatBudget(**budget), wall_clock=clock, sleep=clock.sleep)


async def test_budget_paces_essentials_to_one_a_second_after_a_short_burst() -> None:
    bus, transport, clock = EventBus(), FakeTransport(), WallClock()
    notifier = budgeted(transport, clock, burst=3, min_interval=1.0, per_minute=100)
    notifier.attach(bus)
    sample = events()
    for _ in range(6):
        bus.publish(sample[EventKind.TRADE_CLOSED])
    for _ in range(50):
        await asyncio.sleep(0)
    await notifier.stop()
    assert len(transport.sent) == 6  # essentials are never skipped
    assert clock.waits == pytest.approx([1.0, 1.0, 1.0])  # 3 back to back, then one a second


async def test_a_flood_of_market_updates_is_coalesced_and_said_once() -> None:
    transport, clock = FakeTransport(), WallClock()
    notifier = budgeted(transport, clock, report_gap=300.0)
    for n in range(5):  # queued faster than the worker sends: only the newest goes out
        notifier.notify_text(f"update {n}", silent=True, kind="market_update")
    notifier.start()
    for _ in range(50):
        await asyncio.sleep(0)
    clock.now += 60  # a minute later (wall): another update is still inside the 5-minute gap
    notifier.notify_text("update 5", silent=True, kind="market_update")
    clock.now += 300
    notifier.notify_text("update 6", silent=True, kind="market_update")
    await notifier.stop()
    texts = transport.texts()
    assert texts[0].startswith("🔕 Market updates come faster than this chat's budget")
    assert [t for t in texts if t.startswith("update")] == ["update 4", "update 6"]
    assert sum(t.startswith("🔕") for t in texts) == 1 and notifier.over_budget["market_update"] == 5
    assert all(silent for *_, silent in transport.sent)


async def test_switches_cover_reports_and_round_trip() -> None:
    transport = FakeTransport()
    notifier = Notifier(transport, CHAT)
    assert notifier.switch("market_update") == "silent" and notifier.switch("trade_closed") == "on"
    assert notifier.set_switch(" Hourly", "OFF") == ("hourly", "off")
    notifier.set_switch("trade_opened", "silent")
    with pytest.raises(ValueError, match="unknown event kind or report"):
        notifier.set_switch("trades", "off")
    with pytest.raises(ValueError, match="use one of on, silent, off"):
        notifier.set_switch("daily", "loud")
    notifier.notify_text("hourly report", kind="hourly")
    notifier.notify_text("direct answer")
    notifier.notify_event(events()[EventKind.TRADE_OPENED])
    await notifier.stop()
    assert [t.splitlines()[0] for t in transport.texts()] == ["direct answer", "🟢 LONG (BUY) XAUUSD #1001"]
    assert transport.sent[1][3] is True  # trade_opened switched to silent
    restored = Notifier(transport, CHAT)
    restored.load_switches({**notifier.switches_to_save(), "gone_kind": "off"})
    assert restored.switches == {"hourly": "off", "trade_opened": "silent"}


async def test_notify_control_stores_before_it_applies() -> None:
    from bot.notifier import NOTIFY_STATE_KEY, NotifyControl

    saved: list[dict] = []

    async def save(values: dict) -> None:
        saved.append(values)

    notifier = Notifier(FakeTransport(), CHAT)
    control = NotifyControl(notifier, save)
    assert await control.set("market_update", "off") == ("market_update", "off")
    assert saved == [{NOTIFY_STATE_KEY: {"market_update": "off"}}]
    assert "⛔ market_update: off" in control.lines()

    async def broken(values: dict) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        await NotifyControl(notifier, broken).set("hourly", "off")
    assert notifier.switch("hourly") == "silent"  # unchanged: nothing was stored
    with pytest.raises(ValueError):
        await control.set("nope", "off")
