"""The Telegram controller end to end: the real dispatcher polling the fake Bot API, a real engine and journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.telegram import COMMANDS
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import CHAT, OTHER, SECOND_ADMIN, USER, Harness, harness


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path):
        yield x


@pytest.fixture
async def hp(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    """With two open positions."""
    async for x in harness(fake_telegram, tmp_path, open_positions=2):
        yield x


# ---------------------------------------------------------------- access


async def test_unauthorised_user_is_refused_once_audited_and_sees_no_data(h: Harness) -> None:
    first = await h.send("/status", user=OTHER)
    assert "private bot" in first.params["text"]
    h.server.push_message(OTHER, OTHER, "/positions")
    h.server.push_message(OTHER, OTHER, "/risk percent 5")
    entries = await h.audits(3)
    sent = h.server.sent_messages(OTHER)
    assert len(sent) == 1  # rate-limited: one refusal
    assert not any("$" in (m.text or "") or "10,000" in (m.text or "") for m in sent)
    assert [(e.command, e.allowed, e.user_id) for e in reversed(entries)] == [
        ("/status", False, OTHER),
        ("/positions", False, OTHER),
        ("/risk", False, OTHER),
    ]
    assert entries[0].args == "percent 5" and entries[0].result.startswith("refused")
    assert h.engine.limits.risk_per_trade_pct == 1.0


async def test_allowed_command_is_audited_with_result(h: Harness) -> None:
    await h.send("/pause")
    entries = await h.audits(1)
    assert (entries[0].command, entries[0].allowed, entries[0].user_id, entries[0].chat_id) == (
        "/pause",
        True,
        USER,
        CHAT,
    )
    assert "paused" in entries[0].result


# ---------------------------------------------------------------- commands


async def test_help_lists_the_same_commands_as_the_menu(h: Harness) -> None:
    call = await h.send("/help")
    menu = [c["command"] for c in h.server.calls_to("setMyCommands")[0].params["commands"]]
    assert menu == [c.name for c in COMMANDS]
    listed = [
        line.split()[0].lstrip("/") for line in call.params["text"].splitlines()[1:] if line.startswith("/")
    ]
    assert listed == menu
    assert call.params["text"].rstrip().endswith("⏰ 17:00 WIB")  # every message carries the clock line


async def test_status_shows_account_risk_and_uptime(h: Harness) -> None:
    text = (await h.send("/status")).params["text"]
    assert "Balance <code>$10,000.00</code>" in text
    assert "Mode <code>NORMAL</code>" in text
    assert "Uptime 2h 00m" in text
    assert "Session London" in text or "Session —" in text
    assert "p50" in text and "WIB" in text


async def test_positions_close_goes_through_a_confirmation(hp: Harness) -> None:
    listing = await hp.send("/positions")
    msg = hp.message(listing.result["message_id"])
    tickets = sorted(hp.engine.positions)
    assert [b["text"] for b in msg.buttons] == [f"Close #{t}" for t in tickets]
    assert "POSITIONS</b> (2)" in msg.text and "SL 3,290.00 · TP 3,320.00" in msg.text

    # ask -> a confirmation message; nothing closed yet
    since = len(hp.server.calls)
    answer = await hp.press(msg.buttons[0]["callback_data"], msg.message_id)
    assert answer.ok
    confirm_call = await hp.wait_sent(CHAT, since)
    confirm = hp.message(confirm_call.result["message_id"])
    assert [b["text"] for b in confirm.buttons] == ["Confirm close", "Cancel"]
    assert len(hp.engine.positions) == 2

    # cancel on a second confirmation leaves the position open
    await hp.press(msg.buttons[1]["callback_data"], msg.message_id)
    second = hp.last()
    await hp.press(second.buttons[1]["callback_data"], second.message_id)
    assert "cancelled" in hp.message(second.message_id).text and len(hp.engine.positions) == 2

    # confirm closes exactly that ticket and edits the message
    done = await hp.press(confirm.buttons[0]["callback_data"], confirm.message_id)
    assert not done.params.get("text")  # no bare "Done" toast: the edited message says what happened
    assert sorted(hp.engine.positions) == tickets[1:]
    edited = hp.message(confirm.message_id)
    assert edited.text.startswith(f"✅ Closed <b>#{tickets[0]}</b>") and edited.buttons == []
    assert "⏰" in edited.text
    # a stale confirm for the same ticket does nothing
    again = await hp.press(
        confirm.buttons[0]["callback_data"] if confirm.buttons else f"pos:yes:{tickets[0]}",
        confirm.message_id,
    )
    assert "no longer open" in again.params["text"] and sorted(hp.engine.positions) == tickets[1:]


async def test_positions_when_flat(h: Harness) -> None:
    assert "No open positions" in (await h.send("/positions")).params["text"]


async def test_pause_and_resume(h: Harness) -> None:
    assert "paused" in (await h.send("/pause")).params["text"]
    assert h.engine.paused and h.engine.paused_by == f"tg:{USER}"
    assert "already paused by you" in (await h.send("/pause")).params["text"].lower()
    assert "⏸ paused" in (await h.send("/status")).params["text"]
    assert "resumed" in (await h.send("/resume")).params["text"]
    assert not h.engine.paused
    assert "not paused" in (await h.send("/resume")).params["text"].lower()


async def test_closeall_asks_first(hp: Harness) -> None:
    ask = await hp.send("/closeall")
    msg = hp.message(ask.result["message_id"])
    assert "Close all <b>2 positions</b>" in msg.text and len(hp.engine.positions) == 2
    await hp.press(msg.buttons[0]["callback_data"], msg.message_id)
    assert hp.engine.positions == {} and "Closed 2" in hp.message(msg.message_id).text


async def test_filters_lists_every_gate(h: Harness) -> None:
    from trading.gates import GateResult
    from trading.records import Decision

    gates = (
        GateResult("session", True, "London allowed"),
        GateResult("spread", False, "spread 80 > 50 pts"),
        GateResult("h1_bias", True, "disabled", skipped=True),
    )
    h.engine.last_decision = Decision(
        h.clock.now, "skip", None, "spread 80 > 50 pts", gates, "medium", 0.7, 0.65
    )
    text = (await h.send("/filters")).params["text"]
    assert "1 passed, 1 failed, 1 skipped of 3" in text  # the count covers every gate listed
    assert "✅ <b>session</b>: London allowed" in text
    assert "❌ <b>spread</b>: spread 80 &gt; 50 pts" in text
    assert "⏭ <b>h1_bias</b>: disabled" in text


async def test_filters_and_market_before_any_decision(h: Harness) -> None:
    assert "No decision yet" in (await h.send("/filters")).params["text"]
    h.engine.analysis = None
    assert "No analysis yet" in (await h.send("/market")).params["text"]


async def test_market_shows_the_analysis(h: Harness) -> None:
    from tests.engine_fixtures import analysis

    h.engine.analysis = analysis()
    text = (await h.send("/market")).params["text"]
    assert "XAUUSD <code>3,300.00</code>" in text and "Spread <code>25</code>" in text
    assert "ML p_up <code>0.70</code>" in text and "Regime medium" in text and "Session London" in text
    assert "SMC 🟢 BUY 70%" in text
    # the quality gate's own verdict (as /filters shows it), not the model's threshold
    assert "Quality GOOD (70) · ✅ gate passes (only AVOID blocks)" in text and "needs" not in text


async def test_daily_reads_the_journal(h: Harness) -> None:
    text = (await h.send("/daily")).params["text"]
    assert "Trades 0" in text and "Start $10,000.00" in text


@pytest.mark.parametrize(
    "text",
    [
        "/risk percent abc",
        "/risk percent",
        "/risk mode TURBO",
        "/risk percent 50",
        "/risk leverage 3",
        "/chart 5",
        "/chart lots",
    ],
)
async def test_bad_arguments_get_a_usage_line(h: Harness, text: str) -> None:
    reply = (await h.send(text)).params["text"]
    assert "Usage: /" in reply and "Traceback" not in reply
    assert h.engine.limits.risk_per_trade_pct == 1.0


async def test_unknown_command(h: Harness) -> None:
    text = (await h.send("/frobnicate")).params["text"]
    assert "/frobnicate is not a command" in text and "/help" in text
    assert "/status" in (await h.send("/stauts")).params["text"]


async def test_a_failing_handler_answers_an_apology(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(h.engine, "snapshot", boom)
    reply = (await h.send("/status")).params["text"]
    assert reply == "Something went wrong; it is logged."
    entries = await h.audits(1)
    assert entries[0].result == "error: RuntimeError"


# ---------------------------------------------------------------- risk and approvals


async def test_risk_shows_mode_and_limits(h: Harness) -> None:
    text = (await h.send("/risk")).params["text"]
    assert "Risk/trade <code>1%</code>" in text and "Max daily loss <code>3%</code> ($300.00)" in text
    assert "Mode <code>NORMAL</code>" in text


async def test_tightening_applies_at_once(h: Harness) -> None:
    reply = (await h.send("/risk percent 0.5")).params["text"]
    assert reply.startswith("✅ applied") and h.engine.limits.risk_per_trade_pct == 0.5
    assert (await h.send("/risk mode protected")).params["text"].startswith("✅ applied")
    assert str(h.engine.state.manual_floor) == "PROTECTED"
    assert h.engine.approvals.pending(h.clock.now) == []


async def request_loosening(h: Harness) -> int:
    call = await h.send("/risk percent 2")
    assert h.engine.limits.risk_per_trade_pct == 1.0
    msg = h.message(call.result["message_id"])
    assert "APPROVAL NEEDED" in msg.text and "risk per trade 1% → 2%" in msg.text
    assert (
        "Expires in 10 min (17:10 WIB)" in msg.text
        and "⏰ 17:00 WIB" in msg.text
        and "Daily loss $0.00 / $300.00" in msg.text
    )
    assert [b["text"] for b in msg.buttons] == ["Approve", "Reject"]
    assert all(len(b["callback_data"].encode()) < 64 for b in msg.buttons)
    return msg.message_id


async def test_loosening_needs_approval_and_applies_once(h: Harness) -> None:
    mid = await request_loosening(h)
    approve = h.message(mid).buttons[0]["callback_data"]
    applied: list[object] = []
    h.engine.bus.on(lambda e: applied.append(e) if e.kind == "risk_change_applied" else None)

    # another (unauthorised) user's tap does nothing
    refused = await h.press(approve, mid, user=OTHER)
    assert refused.params["text"] == "not allowed" and h.engine.limits.risk_per_trade_pct == 1.0

    ok = await h.press(approve, mid)
    # no toast: the edited card is the answer (one press, one edited card plus the applied change)
    assert not ok.params.get("text") and h.engine.limits.risk_per_trade_pct == 2.0
    done = h.message(mid)
    # the edit keeps the card (its title and the figures the trader decided on) and says who, in words
    assert "✅ Approved by you at 17:00 WIB real time" in done.text and done.buttons == []
    assert "APPROVAL NEEDED" in done.text and "<b>Now</b>" in done.text and "Daily loss $0.00" in done.text
    assert "tg:" not in done.text and "⏰ 17:00 WIB" in done.text

    again = await h.press(approve, mid)  # double tap
    assert again.params["text"] == "already approved"
    reject = await h.press(
        approve.rsplit(":", 1)[0] + ":0", mid, user=SECOND_ADMIN
    )  # a second admin, too late
    assert reject.params["text"] == "already approved"
    assert h.engine.limits.risk_per_trade_pct == 2.0 and len(applied) == 1
    assert h.message(mid).edits == 1
    entries = [e for e in await h.audits(5) if e.command == "button:ap"]
    assert [e.result for e in reversed(entries)] == [
        "refused: button",
        "approved",
        "did nothing: already approved",
        "did nothing: already approved",
    ]


async def test_reject_changes_nothing(h: Harness) -> None:
    mid = await request_loosening(h)
    answer = await h.press(h.message(mid).buttons[1]["callback_data"], mid)
    assert not answer.params.get("text") and h.engine.limits.risk_per_trade_pct == 1.0
    assert "❌ Rejected by" in h.message(mid).text


async def test_expiry_edits_the_message(h: Harness) -> None:
    mid = await request_loosening(h)
    h.clock.advance(minutes=11)
    since = len(h.server.calls)
    await h.engine.on_tick()  # the engine expires it and publishes; the announcer edits
    await h.server.wait_for("editMessageText", lambda c: c.params["message_id"] == mid, since=since)
    msg = h.message(mid)
    assert "⌛ Expired — nothing changed" in msg.text and msg.buttons == []
    assert h.engine.limits.risk_per_trade_pct == 1.0


async def test_a_tap_after_expiry_does_nothing(h: Harness) -> None:
    mid = await request_loosening(h)
    approve = h.message(mid).buttons[0]["callback_data"]
    h.clock.advance(minutes=11)  # expired, but no engine tick has noticed yet
    answer = await h.press(approve, mid)
    assert answer.params["text"] == "expired" and h.engine.limits.risk_per_trade_pct == 1.0
    assert "Expired" in h.message(mid).text


async def test_engine_proposed_approval_is_posted_to_the_chat(h: Harness) -> None:
    from trading.risk.approvals import RiskChange

    since = len(h.server.calls)
    result = await h.engine.request_risk_change(
        RiskChange("limits", "max positions 2 → 3", {"max_positions": 3}), by="engine"
    )
    assert result.approval is not None
    call = await h.wait_sent(CHAT, since)
    msg = h.message(call.result["message_id"])
    assert "max positions 2 → 3" in msg.text and "Requested by:</b> the bot" in msg.text
    await h.press(msg.buttons[0]["callback_data"], msg.message_id)
    assert h.engine.limits.max_positions == 3


async def test_approval_answered_elsewhere_is_edited_by_the_announcer(h: Harness) -> None:
    mid = await request_loosening(h)
    approval = h.engine.approvals.pending(h.clock.now)[0]
    since = len(h.server.calls)
    await h.engine.resolve_approval(approval.id, True, by="console")
    await h.server.wait_for("editMessageText", lambda c: c.params["message_id"] == mid, since=since)
    assert (
        "✅ Approved by the console" in h.message(mid).text
        and "APPROVAL NEEDED" in h.message(mid).text
        and h.engine.limits.risk_per_trade_pct == 2.0
    )


async def test_resume_from_stopped_and_reset_need_approval(h: Harness) -> None:
    from dataclasses import replace

    h.engine.state = replace(h.engine.state, total_stop=True)
    call = await h.send("/resume")
    assert "APPROVAL NEEDED" in call.params["text"] and "leave STOPPED" in call.params["text"]
    first = call.result["message_id"]
    since = len(h.server.calls)
    call = await h.send("/risk reset")
    assert (
        "APPROVAL NEEDED" in call.params["text"] and "reset the total-loss reference" in call.params["text"]
    )
    # the newer reset_total request superseded the first one (same kind)
    assert [a.change.summary for a in h.engine.approvals.pending(h.clock.now)] == [
        "reset the total-loss reference to the current balance"
    ]
    await h.server.wait_for("editMessageText", lambda c: c.params["message_id"] == first, since=since)
    assert "superseded" in h.message(first).text and h.message(first).buttons == []


async def test_two_simultaneous_taps_apply_once(h: Harness) -> None:
    mid = await request_loosening(h)
    approve = h.message(mid).buttons[0]["callback_data"]
    applied: list[object] = []
    h.engine.bus.on(lambda e: applied.append(e) if e.kind == "risk_change_applied" else None)
    since = len(h.server.calls)
    ids = {
        h.server.push_callback(u, CHAT, approve, mid)["callback_query"]["id"] for u in (USER, SECOND_ADMIN)
    }
    answers = []
    for qid in ids:
        answers.append(
            await h.server.wait_for(
                "answerCallbackQuery", lambda c, q=qid: c.params.get("callback_query_id") == q, since=since
            )
        )
    assert sorted(a.params.get("text") or "" for a in answers) == ["", "already approved"]
    assert len(applied) == 1 and h.engine.limits.risk_per_trade_pct == 2.0


async def test_make_bot_points_at_the_given_api_url(fake_telegram: FakeTelegramServer) -> None:
    from bot.telegram import make_bot

    bot = make_bot(fake_telegram.token, fake_telegram.base_url)
    try:
        assert (await bot.get_me()).username == fake_telegram.bot_username
    finally:
        await bot.session.close()


async def test_export_sends_the_journal_trades_as_csv(h: Harness) -> None:
    from datetime import timedelta

    from trading.domain import ClosedTrade, Position, Side

    t0 = h.engine.snapshot().time - timedelta(hours=2)
    await h.journal.record_trade_open(
        Position(77, "XAUUSD", Side.BUY, 0.01, 3300.0, t0, sl=3290.0, tp=3320.0)
    )
    await h.journal.record_trade_close(
        ClosedTrade(
            77, "XAUUSD", Side.BUY, 0.01, 3300.0, 3310.0, t0, t0 + timedelta(hours=1), 10.0, "broker_tp"
        )
    )
    call = await h.send("/export 7")
    assert call.method.lower() == "senddocument"
    csv_text = (h.server.sent_messages(USER)[-1].document or b"").decode()
    assert "77" in csv_text and "broker_tp" in csv_text
    assert "1 trade" in call.params["caption"] and "trade(s)" not in call.params["caption"]
    bad = await h.send("/export soon")
    assert "Usage: /export" in bad.params["text"]


async def test_notify_lists_switches_and_changes_one_kept_in_the_journal(h: Harness) -> None:
    from bot.notifier import NOTIFY_STATE_KEY, Notifier, NotifyControl

    notifier = Notifier(None, CHAT)  # type: ignore[arg-type]  # only its switches are used here
    h.ctx.notify = NotifyControl(notifier, h.journal.save_state)
    listing = (await h.send("/notify")).params["text"]
    # groups in a trader's words, not 22 internal kind names
    assert "<b>Market updates</b>: silent" in listing and "<b>Trades</b>: on" in listing
    assert "trade_opened" not in listing and "risk_change_proposed" not in listing and "⏰" in listing
    changed = (await h.send("/notify market_update off")).params["text"]  # a kind's own name still works
    assert "market_update: <b>off</b>" in changed
    assert notifier.switch("market_update") == "off"
    assert (await h.journal.load_state())[NOTIFY_STATE_KEY] == {"market_update": "off"}
    grouped = (await h.send("/notify trades silent")).params["text"]
    assert "Trades: <b>silent</b>" in grouped
    assert {notifier.switch(k) for k in ("trade_opened", "trade_closed", "order_failed")} == {"silent"}
    notifier.set_switch("order_failed", "on")
    assert (
        "mixed (trade opened silent, trade closed silent, order failed on)"
        in (await h.send("/notify")).params["text"]
    )
    refused = (await h.send("/notify trades loud")).params["text"]
    assert refused.startswith("❌") and "use on, silent or off" in refused
    unknown = (await h.send("/notify fireworks off")).params["text"]
    assert unknown.startswith("❌") and "Groups: trades, stops" in unknown and "trade_opened" not in unknown
    assert "Usage" in (await h.send("/notify hourly")).params["text"]
    entries = await h.audits(4)
    assert entries[0].command == "/notify" and any(e.result == "market_update=off" for e in entries)
