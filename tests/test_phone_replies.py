"""What a trader reads on the phone: one message per action, people and rules by name, clocks that
say which clock they are, figures that agree, and a setting that cannot act says so.

Replies are checked through aiogram against the local fake Bot API (tests/fake_telegram.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from bot.messages import render_event
from bot.notifier import Notifier, NotifyControl
from bot.transport import TelegramTransport, html_to_text
from handlers import echo
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import CHAT, USER, Harness, harness
from trading.domain import ClosedTrade, Side
from trading.events import Event, EventKind

GROUP = -100123


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path):
        yield x


async def with_notifier(h: Harness) -> Notifier:
    notifier = Notifier(TelegramTransport(h.polling.bot), CHAT)
    notifier.attach(h.engine.bus)
    h.ctx.notify = NotifyControl(notifier, h.journal.save_state)
    return notifier


def texts_to(h: Harness, chat: int, since: int) -> list[str]:
    return [
        str(c.params.get("text"))
        for c in h.server.calls[since:]
        if c.method.lower() == "sendmessage" and c.params.get("chat_id") == chat
    ]


async def test_pause_and_resume_in_the_notification_chat_are_one_message_each(h: Harness) -> None:
    notifier = await with_notifier(h)
    try:
        since = len(h.server.calls)
        await h.send("/pause")
        await asyncio.sleep(0.3)  # time for a broadcast to arrive, if one were sent
        said = texts_to(h, CHAT, since)
        assert len(said) == 1 and "Trading paused</b> by you" in said[0] and "⏰ 17:00 WIB" in said[0]
        since = len(h.server.calls)
        await h.send("/resume")
        await asyncio.sleep(0.3)
        said = texts_to(h, CHAT, since)
        assert len(said) == 1 and "Trading resumed</b> by you" in said[0]
        # typed in another chat: that chat gets the reply, the notification chat the broadcast, by first name
        since = len(h.server.calls)
        h.server.push_message(USER, GROUP, "/pause", first_name="Alice")
        await h.server.wait_for(
            "sendMessage", lambda c: c.params.get("chat_id") == CHAT, since=since, timeout=5
        )
        broadcast = texts_to(h, CHAT, since)
        assert (
            len(broadcast) == 1
            and "TRADING PAUSED</b> by Alice" in broadcast[0]
            and "tg:" not in broadcast[0]
        )
        # a pause that changes nothing publishes nothing and leaves no mark behind
        since = len(h.server.calls)
        again = (await h.send("/pause")).params["text"]
        assert again.startswith("Already paused by you")  # the same person, in another chat
        assert not +echo._expected  # no mark left for an event that never came
    finally:
        await notifier.stop(timeout=5)


async def test_risk_percent_says_why_the_lots_stay_capped(h: Harness) -> None:
    call = await h.send("/risk percent 2")
    card = h.message(call.result["message_id"])
    assert "Will it show in the lots?" in card.text
    assert "Lots are capped at 0.02 by the lot band (MAX_LOT in .env)" in card.text
    assert "2% ($200.00) is reached only with a stop at least 100.00 away" in card.text
    await h.press(card.buttons[0]["callback_data"], card.message_id)
    done = h.message(card.message_id)
    assert "✅ Approved by you" in done.text and "Lots are capped at 0.02" in done.text  # the card is kept
    assert "Lots are capped at 0.02" in (await h.send("/risk")).params["text"]  # and /risk keeps saying so
    # lowering stays below the cap: nothing to explain
    lower = (await h.send("/risk percent 0.01")).params["text"]
    assert lower.startswith("✅ applied") and "Will it show" not in lower


# ---------------------------------------------------------------------------------------- pure parts


def test_percent_effect_names_the_rule_that_acts_first() -> None:
    from handlers.risk_effect import percent_effect
    from trading.risk.modes import RiskLimits

    limits = RiskLimits(risk_per_trade_pct=2.0, max_lot=0.02)
    notes = percent_effect(2.0, limits, 2_600.0, stop_distance=6.5, recent_profits=[])
    assert notes == [
        "Lots are capped at 0.02 by the lot band (MAX_LOT in .env): with the last setup's stop 6.50 "
        "away, 2% would be 0.08 lot; 0.02 lot risks 0.50%"
    ]
    assert percent_effect(0.1, limits, 2_600.0, stop_distance=6.5, recent_profits=[]) == []
    losing = [-10.0] * 15 + [5.0] * 10
    assert any(
        n.startswith("Half-Kelly on the last 25 trades allows 0.00%")
        for n in percent_effect(0.1, limits, 2_600.0, stop_distance=6.5, recent_profits=losing)
    )


def test_a_rule_exit_before_the_stop_says_which_acted_first() -> None:
    t0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    trade = ClosedTrade(
        7,
        "XAUUSD",
        Side.BUY,
        0.02,
        3300.0,
        3287.45,
        t0,
        t0 + timedelta(hours=1),
        -25.10,
        "max_loss",
        sl=3287.03,
    )
    text = html_to_text(
        render_event(Event(EventKind.TRADE_CLOSED, t0, {"trade": trade, "by": "exit_rules"})).html
    )
    assert "The max loss per trade rule acted before the stop at 3,287.03 (-$25.94) was reached" in text
    assert "exit_rules" not in text and "By:" not in text
    broker = ClosedTrade(
        8, "XAUUSD", Side.BUY, 0.02, 3300.0, 3287.03, t0, t0, -25.94, "broker_sl", sl=3287.03
    )
    assert "acted before" not in html_to_text(
        render_event(Event(EventKind.TRADE_CLOSED, t0, {"trade": broker})).html
    )


def test_people_and_rules_by_name() -> None:
    from handlers.names import console_actor, remember, who

    remember("tg:42", "Budi")
    assert who("tg:42") == "Budi" and who("tg:42", reader="tg:42") == "you"
    assert who("exit_rules") == "the exit rules" and who("tg:99") == "a chat user"
    console_actor("tg:7")
    remember("tg:7", "console")
    assert who("tg:7") == "you"
    e = Event(EventKind.PAUSED, datetime(2026, 3, 2, 6, 0, tzinfo=UTC), {"by": "tg:42"})
    assert "TRADING PAUSED</b> by Budi" in render_event(e).html


def test_filters_count_covers_every_listed_gate() -> None:
    from handlers.filters import gate_count
    from trading.gates import GateResult

    gates = [GateResult(f"g{i}", True, "ok") for i in range(12)] + [
        GateResult(f"s{i}", True, "off", skipped=True) for i in range(5)
    ]
    assert gate_count(gates) == "12 passed, 5 skipped of 17"


def test_version_finds_a_package_under_another_distribution_name() -> None:
    from bot.context import version_of

    assert version_of("no_such_module_xyz", {"no_such_module_xyz": ["pytest"]}).endswith("(pytest)")
    assert version_of("no_such_module_xyz", {}) == "not installed"


def test_backtest_days_are_calendar_days() -> None:
    from bot.backtests import calendar_window

    # three calendar weeks of M15 bars on weekdays only (the market is shut at weekends)
    start = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    times = [start + timedelta(minutes=15 * i) for i in range(96 * 28)]
    times = [t for t in times if t.weekday() < 5]
    series = pl.Series("time", times)
    first = calendar_window(series, 21, warmup=0)
    window_start = series[-1] + timedelta(minutes=15) - timedelta(days=21)
    assert series[first] >= window_start > series[first - 1]
    assert (series.len() - first) / 96 == 15.0  # 15 trading days of bars in the last 21 calendar days
    assert calendar_window(series, 21, warmup=50) == first - 50
    assert calendar_window(series, 365, warmup=50) == 0  # the bot has fewer bars than asked


def test_health_does_not_judge_the_warm_up() -> None:
    from handlers.system import health_items
    from trading.timing import WARMUP_SAMPLES, PhaseTimer

    timer = PhaseTimer()
    timer.add("analysis", 3157.0)
    snap = SimpleNamespace(
        account=None,
        last_decision=None,
        timing=timer.summary(),
        paused=False,
        mode=SimpleNamespace(mode="NORMAL"),
    )
    now = datetime(2026, 3, 7, 6, 0, tzinfo=UTC)  # Saturday: market closed
    lines, problems = health_items(snap, now, 0, "ok", "none", False, frozenset(timer.warming_up()))
    assert not any("analysis" in p for p in problems) and any("warming up" in line for line in lines)
    for _ in range(WARMUP_SAMPLES + 3):
        timer.add("analysis", 12.0)
    assert timer.summary()["analysis"] == (12.0, 12.0)  # steady runs only
    snap.timing = {"analysis": (12.0, 1500.0)}
    _, problems = health_items(snap, now, 0, "ok", "none", False, frozenset(timer.warming_up()))
    assert any("analysis p99 1,500 ms" in p for p in problems)  # a slow loop after warm-up is still flagged


def test_chart_regimes_without_a_model_are_unknown_not_low_vol() -> None:
    from handlers.charts import chart_inputs

    bars = pl.DataFrame({"time": [datetime(2026, 3, 2, tzinfo=UTC)] * 3, "close": [1.0, 2.0, 3.0]})
    no_model = SimpleNamespace(bars=bars, structure=None, regime_probs=np.full((3, 3), np.nan))
    assert chart_inputs(no_model, 3)[2] is None  # type: ignore[arg-type]
    probs = np.array([[np.nan] * 3, [0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    part = SimpleNamespace(bars=bars, structure=None, regime_probs=probs)
    assert chart_inputs(part, 3)[2].to_list() == [-1, 1, 0]  # type: ignore[arg-type, union-attr]


def test_filters_say_when_the_lot_band_holds_the_lot() -> None:
    from handlers.filters import filters_text
    from trading.gates import GateResult
    from trading.records import Decision
    from trading.risk.modes import RiskLimits

    t = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    gates = (GateResult("session", True, "London"), GateResult("lot_size", True, "0.02 lot, 0.52% at risk"))
    decision = Decision(t, "enter", Side.BUY, "ok", gates, "medium", 0.7, 0.65)
    text = filters_text(decision, t, RiskLimits(risk_per_trade_pct=2.0, max_lot=0.02))
    assert "capped by the lot band (MAX_LOT 0.02 in .env): risk per trade 2% would need a larger lot" in text
    assert "2 passed of 2" in text
    assert "capped" not in filters_text(decision, t, RiskLimits(risk_per_trade_pct=0.5, max_lot=0.02))


def test_percent_effect_without_a_setup_uses_one_atr() -> None:
    from handlers.risk_effect import percent_effect, stop_distance_of
    from trading.risk.modes import RiskLimits

    distance, label = stop_distance_of(SimpleNamespace(setup=None, atr=5.0))
    notes = percent_effect(
        2.0,
        RiskLimits(risk_per_trade_pct=2.0, max_lot=0.02),
        5_000.0,
        stop_distance=distance,
        stop_label=label,
        recent_profits=[],
    )
    assert notes[0].endswith("with a stop one ATR 5.00 away, 2% would be 0.20 lot; 0.02 lot risks 0.20%")


def test_every_notified_kind_is_in_a_notify_group() -> None:
    from bot.messages import NOT_NOTIFIED
    from bot.notifier import MESSAGE_KINDS
    from handlers.notify import GROUPS

    grouped = [k for g in GROUPS.values() for k in g.kinds]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == set(MESSAGE_KINDS) - {k.value for k in NOT_NOTIFIED}
