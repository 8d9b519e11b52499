"""The trader's everyday commands (issue 14), driven through aiogram against the fake Bot API:
/profit /stats /performance /trades /daily /weekly /monthly /balance /close /why /logs /health
/version /backtest, the command table (menu, /help, aliases, keyboard), access refusal and audit."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bot.backtests import BotBacktester
from bot.logbuffer import LogBuffer
from bot.store.queries import period_rows, setup_kind, trade_stats
from bot.telegram import COMMANDS, bot_commands
from charts.style import PNG_SIGNATURE
from handlers.common import parse_count
from handlers.services import BacktestRefused
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_fixtures import OTHER, USER, Harness, harness
from trading.backtest import BacktestConfig
from trading.domain import ClosedTrade, Position, Side

BOS_FVG = "BOS up + bullish FVG 3298.10-3300.40"
CHOCH_OB = "CHoCH down + bearish OB 3310.00-3312.50"


@pytest.fixture
async def h(fake_telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness(fake_telegram, tmp_path):
        yield x


async def book(
    h: Harness,
    ticket: int,
    side: Side,
    profit: float,
    reason: str,
    closed_ago: timedelta,
    setup: str | None = None,
) -> None:
    """One closed trade in the journal (closed `closed_ago` before the engine's clock), with its decision."""
    closed = h.engine.snapshot().time - closed_ago
    opened = closed - timedelta(hours=1)
    decision_id = None
    if setup is not None:
        decision_id = await h.journal.record_decision(
            opened - timedelta(minutes=15),
            "enter",
            side=side,
            p_up=0.71,
            regime="medium",
            confidence=0.71,
            threshold=0.65,
            reason=setup,
            setup=setup,
            lot=0.01,
            gates=[
                {"name": "session", "passed": True, "reason": "London"},
                {"name": "ml_confidence", "passed": True, "reason": "0.71 >= 0.65"},
            ],
            features={"rsi_14": 61.2, "atr": 4.8, "session": "London", "ml_p_up": 0.71},
        )
    await h.journal.record_trade_open(
        Position(ticket, "XAUUSD", side, 0.01, 3300.0, opened, sl=3290.0, tp=3320.0), decision_id=decision_id
    )
    await h.journal.record_trade_close(
        ClosedTrade(ticket, "XAUUSD", side, 0.01, 3300.0, 3300.0 + profit, opened, closed, profit, reason)
    )


async def seed(h: Harness) -> None:
    # the engine's clock is 2026-03-10 10:00 UTC = 17:00 WIB, a Tuesday
    await book(h, 101, Side.BUY, 20.0, "broker_tp", timedelta(hours=4), BOS_FVG)
    await book(h, 102, Side.SELL, -8.0, "broker_sl", timedelta(hours=2), CHOCH_OB)
    await book(h, 103, Side.BUY, 5.0, "trailing", timedelta(days=3), BOS_FVG)  # Saturday: last week
    await book(h, 104, Side.BUY, -3.0, "time_exit", timedelta(days=10))  # February, opened by hand


def text_of(call: Any) -> str:
    return call.params.get("text") or call.params.get("caption") or ""


# ---------------------------------------------------------------- pure parts


def test_setup_kind_names_the_structure_and_the_zone() -> None:
    assert setup_kind(BOS_FVG) == "BOS + FVG"
    assert setup_kind(CHOCH_OB) == "CHoCH + OB"
    assert setup_kind("trend up + bullish OB 1-2") == "trend + OB"
    assert setup_kind("") == "unknown"


def test_parse_count_speaks_of_the_range() -> None:
    assert parse_count("7", default=None, low=1, high=90, what="Days") == 7
    assert parse_count("", default=3, low=1, high=90, what="Days") == 3
    for bad in ("0", "91", "x", "1 2", "-3"):
        with pytest.raises(ValueError, match="Days must be"):
            parse_count(bad, default=None, low=1, high=90, what="Days")


def test_trade_stats_without_losses_has_no_profit_factor() -> None:
    assert trade_stats([]).profit_factor is None
    assert trade_stats([]).win_rate is None


# ---------------------------------------------------------------- reports


async def test_profit_all_time_and_today(h: Harness) -> None:
    await seed(h)
    text = text_of(await h.send("/profit"))
    assert "all time" in text and "+$14.00" in text and "Trades 4 · won 2 · lost 2" in text
    assert "#101 BUY +$20.00" in text and "#102 SELL -$8.00" in text
    today = text_of(await h.send("/profit 1"))
    assert "today" in today and "+$12.00" in today and "Profit factor <code>2.50</code>" in today
    bad = text_of(await h.send("/profit soon"))
    assert "Days must be one whole number from 1 to 3650" in bad and "Usage: /profit" in bad


async def test_stats_figures(h: Harness) -> None:
    await seed(h)
    text = text_of(await h.send("/stats"))
    assert "Profit factor <code>2.27</code>" in text  # 25 / 11
    assert "Expectancy <code>+$3.50</code>" in text and "Win rate 50% (2/4)" in text
    assert "Average win <code>+$12.50</code> · loss <code>-$5.50</code>" in text
    assert re.search(r"broker_tp\s+1\s+25%", text)
    week = text_of(await h.send("/stats 7"))
    assert "last 7 days" in week and "Win rate 67% (2/3)" in week


async def test_stats_with_no_trades_says_so(h: Harness) -> None:
    assert "No closed trades all time" in text_of(await h.send("/stats"))


async def test_performance_by_setup_session_and_side(h: Harness) -> None:
    await seed(h)
    text = text_of(await h.send("/performance"))
    assert "By setup" in text and "By session" in text and "By side" in text
    assert re.search(r"BOS \+ FVG\s+2\s+100%\s+\+\$25\.00", text)
    assert re.search(r"CHoCH \+ OB\s+1\s+0%\s+-\$8\.00", text)
    assert "no decision" in text
    assert re.search(r"SELL\s+1\s+0%\s+-\$8\.00", text)
    assert re.search(r"London\s+3\s+67%\s+\+\$17\.00", text)  # the session the decisions saw
    assert "PERFORMANCE" in text_of(await h.send("/perf 1"))  # the alias


async def test_trades_lists_the_last_n(h: Harness) -> None:
    await seed(h)
    text = text_of(await h.send("/trades 2"))
    assert "101" in text and "102" in text and "103" not in text
    assert "broker_sl" in text and "Sum <code>+$12.00</code>" in text
    assert "must be from 1 to 50" in text_of(await h.send("/trades 0"))


async def test_daily_n_is_a_table_of_days_not_today(h: Harness) -> None:
    await seed(h)
    table = text_of(await h.send("/daily 7"))
    assert "last 7 days" in table and "DAILY" in table
    assert re.search(r"03-10 Tue\s+2\s+50%\s+\+\$12\.00", table)
    assert re.search(r"03-07 Sat\s+1\s+100%\s+\+\$5\.00", table)
    assert re.search(r"total\s+3\s+67%\s+\+\$17\.00", table)
    assert len(re.findall(r"^03-\d\d \w{3}", table.split("<pre>")[1], re.M)) == 7
    today = text_of(await h.send("/daily"))
    assert "DAILY</b> 2026-03-10" in today and "#101" in today and "#103" not in today
    assert "Usage: /daily" in text_of(await h.send("/daily 100"))


async def test_weekly_and_monthly(h: Harness) -> None:
    await seed(h)
    weekly = text_of(await h.send("/weekly 2"))
    assert re.search(r"wk 03-09\s+2\s+50%\s+\+\$12\.00", weekly)
    assert re.search(r"wk 03-02\s+1\s+100%\s+\+\$5\.00", weekly)
    monthly = text_of(await h.send("/monthly 2"))
    assert re.search(r"2026-03\s+3\s+67%\s+\+\$17\.00", monthly)
    assert re.search(r"2026-02\s+1\s+0%\s+-\$3\.00", monthly)


def test_period_rows_keep_empty_periods() -> None:
    from datetime import date

    rows = period_rows([], "month", 3, date(2026, 1, 15))
    assert [r.start for r in rows] == [date(2026, 1, 1), date(2025, 12, 1), date(2025, 11, 1)]
    assert all(r.trades == 0 for r in rows)


async def test_balance_shows_margin_and_level(fake_telegram: FakeTelegramServer, tmp_path: Path) -> None:
    async for h in harness(fake_telegram, tmp_path, open_positions=1):
        acc = h.engine.snapshot().account
        assert acc is not None and acc.margin > 0
        text = text_of(await h.send("/balance"))
        assert "Free margin" in text and f"{acc.equity / acc.margin:.0%}" in text
        assert f"${acc.margin:,.2f}" in text


# ---------------------------------------------------------------- /close and /why


async def test_close_ticket_asks_then_closes(fake_telegram: FakeTelegramServer, tmp_path: Path) -> None:
    async for h in harness(fake_telegram, tmp_path, open_positions=1):
        ticket = next(iter(h.engine.positions))
        assert f"#999 is not open. Open now: #{ticket}" in text_of(await h.send("/close 999"))
        assert "Usage: /close TICKET" in text_of(await h.send("/close"))
        assert h.engine.positions  # nothing closed yet
        ask = await h.send(f"/close {ticket}")
        assert "Close <b>#" in text_of(ask)
        markup = h.last().reply_markup or {}
        yes = markup["inline_keyboard"][0][0]["callback_data"]
        await h.press(yes, h.last().message_id)
        await h.server.wait_for("editMessageText")
        assert ticket not in h.engine.positions
        assert "Closed <b>#" in (h.last().text or "")


async def test_why_fits_a_phone_and_the_full_list_is_one_button_away(h: Harness) -> None:
    await seed(h)
    call = await h.send("/why 101")
    text = text_of(call)
    assert "WHY #101" in text and BOS_FVG in text and "Regime medium" in text
    assert "p(up) 0.71" in text and "threshold 65%" in text
    assert "Decisive gates</b> (2 passed of 2)" in text and "✅ ml_confidence: 0.71 &gt;= 0.65" in text
    # three features in words, not the whole table of raw names
    assert "What mattered most" in text and "ATR <code>4.8</code>" in text and "rsi_14" not in text
    assert "⏰ 17:00 WIB" in text and len(text.splitlines()) <= 20
    sent = h.message(call.result["message_id"])
    assert [b["text"] for b in sent.buttons] == ["Every gate and feature"]
    since = len(h.server.calls)
    await h.press(sent.buttons[0]["callback_data"], sent.message_id)
    full = text_of(await h.wait_sent(111, since))
    assert "✅ <b>session</b>: London" in full and re.search(r"rsi_14\s+61\.2", full) and "⏰" in full
    audit = [e for e in await h.audits(6) if e.command == "button:why"]
    assert audit and audit[0].result == "full list"
    assert "not opened by the strategy" in text_of(await h.send("/why 104"))
    assert "No trade #555" in text_of(await h.send("/why 555"))
    assert "Usage: /why TICKET" in text_of(await h.send("/why"))


def test_why_names_features_for_a_trader() -> None:
    from handlers.why import feature_name, top_features

    assert feature_name("bb_lower") == "Bollinger lower" and feature_name("macd_hist") == "MACD histogram"
    assert feature_name("rsi_14") == "RSI 14" and feature_name("quality_score") == "Market quality"
    features = {"rsi_14": 61.2, "macd_hist": 0.3, "atr": 4.8, "quality_score": 72.0, "bb_lower": 3290.0}
    assert top_features(features, ["ema_9", "macd_hist", "rsi_14", "bb_lower"]) == [
        "macd_hist",
        "rsi_14",
        "bb_lower",
    ]
    assert top_features(features, []) == ["quality_score", "atr"]  # SMC-only: the setup's own facts


async def test_the_engine_stores_the_features_its_decision_saw(h: Harness) -> None:
    """A decision the live engine takes reaches the journal with its features (revision 0002)."""
    from bot.journal_recorder import JournalRecorder
    from tests.engine_fixtures import analysis
    from trading.records import decision_features

    a = analysis()
    seen = decision_features(a)
    assert seen["atr"] == a.atr and seen["regime"] == a.regime.name and "session" in seen
    recorder = JournalRecorder(h.journal)
    from trading.records import Decision

    did = await recorder.record_decision(
        Decision(
            a.bar_time,
            "skip",
            None,
            "r",
            (),
            a.regime.name,
            None,
            0.6,
            setup_reason="BOS up + bullish OB 1-2",
            features=seen,
        )
    )
    assert did is not None
    stored = await h.journal.decision(did)
    assert (
        stored is not None and stored.setup == "BOS up + bullish OB 1-2" and stored.features["atr"] == a.atr
    )


# ---------------------------------------------------------------- the bot itself


async def test_logs_show_the_last_lines(h: Harness) -> None:
    buffer = LogBuffer(capacity=50)
    log = logging.getLogger("test.trader")
    log.addHandler(buffer)
    log.setLevel(logging.INFO)
    try:
        log.info("tick ok")
        log.warning("spread wide: 80 points")
        h.ctx.logs = buffer
        text = text_of(await h.send("/logs 5"))
        assert "tick ok" in text and "spread wide: 80 points" in text and "WARN" in text
        warn = text_of(await h.send("/logs warn"))
        assert "spread wide" in warn and "tick ok" not in warn
        assert "Usage: /logs" in text_of(await h.send("/logs 500"))
    finally:
        log.removeHandler(buffer)


async def test_health_and_version(h: Harness) -> None:
    text = text_of(await h.send("/health"))
    assert "HEALTH" in text and "✅ Journal: ok" in text and "Broker: account read" in text
    version = text_of(await h.send("/version"))
    assert "xaubot" in version and "0003_outbox" in version and "aiogram" in version


# ---------------------------------------------------------------- /backtest


class GatedBars:
    """Bars for the backtester that wait for the test to release them (proves the work is off the loop)."""

    def __init__(self, bars: pl.DataFrame) -> None:
        self.bars, self.release = bars, threading.Event()

    def __call__(self, n: int) -> pl.DataFrame:
        assert self.release.wait(30), "the test never released the bars"
        return self.bars.tail(n)


async def test_backtest_runs_aside_edits_its_progress_and_sends_the_chart(
    fake_telegram: FakeTelegramServer, tmp_path: Path, shared_bars: pl.DataFrame
) -> None:
    from charts.equity import equity_chart

    async for h in harness(fake_telegram, tmp_path):
        bars = GatedBars(shared_bars.tail(200 + 2 * 96))
        h.ctx.backtester = BotBacktester(bars, lambda: BacktestConfig(balance=5_000.0), chart=equity_chart)
        try:
            first = await h.send("/backtest 2")
            status_id = h.last().message_id
            assert "starting" in text_of(first)
            # while the backtest waits in its worker thread, the bot keeps answering
            assert "STATUS" in text_of(await h.send("/status"))
            assert "already running" in text_of(await h.send("/backtest 2"))
            bars.release.set()
            photo = await h.server.wait_for("sendPhoto", timeout=60)
            assert photo.ok
            card = h.message(status_id)
            assert "BACKTEST" in (card.text or "") and "Profit factor" in (card.text or "")
            assert "2.0 calendar days" in (card.text or "") and "⏰" in (card.text or "")
            assert "Never fired:" in (card.text or "") and "unreachable: none" in (card.text or "")
            assert "calendar days" in (h.last().caption or "") and "⏰" in (h.last().caption or "")
            assert (h.last().photo or b"").startswith(PNG_SIGNATURE)
        finally:
            bars.release.set()
            h.ctx.backtester.close()


def test_backtest_checks_are_one_phone_line_each() -> None:
    from dataclasses import replace

    from handlers.backtest import check_lines
    from trading.coherence import coherence_report
    from trading.parameters import StrategyParams
    from trading.risk.modes import RiskLimits

    params = replace(StrategyParams(), trail_start_atr=9.0)  # beyond the take-profit: unreachable
    fired = {
        "broker_sl",
        "broker_tp",
        "smart_take_profit",
        "max_loss",
        "time_limit",
        "weekend",
        "stall",
        "early_exit",
        "early_cut",
        "ml_reversal",
        "daily_limit",
        "market_close",
        "regime_danger",
        "opposite_signal",
        "peak_drawdown",
        "urgency",
        "session",
    }
    fills = {
        "sl": {"fills": 3, "gapped": 1, "mean_points": 12.0, "p90_points": 30.0, "worst_points": 36.0},
        "tp": {"fills": 2, "gapped": 0, "mean_points": 0.0, "p90_points": 0.0, "worst_points": 0.0},
    }
    lines = check_lines({"coherence": coherence_report(params, RiskLimits(), fired), "fills": fills})
    assert lines[0] == "Never fired: breakeven, trailing stop · unreachable: trailing stop"
    assert lines[1].startswith("Gates that never blocked: flash crash guard, news blackout")
    assert lines[2] == "Stops: 3 SL (1 gapped), +12.0 pts avg, worst +36.0 · 2 TP"
    assert all(len(line) <= 100 for line in lines)
    none = {"sl": {**fills["sl"], "fills": 0}, "tp": {**fills["tp"], "fills": 0}}
    quiet = check_lines(
        {
            "coherence": coherence_report(
                StrategyParams(), RiskLimits(), fired | {"breakeven", "trailing_stop"}
            ),
            "fills": none,
        }
    )
    assert quiet[0] == "Never fired: none · unreachable: none" and not any(
        x.startswith("Stops") for x in quiet
    )


async def test_backtest_with_too_few_bars_says_how_many(
    fake_telegram: FakeTelegramServer, tmp_path: Path, shared_bars: pl.DataFrame
) -> None:
    async for h in harness(fake_telegram, tmp_path):
        tester = BotBacktester(lambda n: shared_bars.tail(120), lambda: BacktestConfig())
        h.ctx.backtester = tester
        try:
            await h.send("/backtest 3")
            status_id = h.last().message_id
            await h.server.wait_for(
                "editMessageText", lambda c: "No backtest" in str(c.params.get("text")), timeout=10
            )
            text = h.message(status_id).text or ""
            assert "the bot has 120 closed M15 bars" in text and "at least 296" in text
            with pytest.raises(BacktestRefused):
                await tester.run(3, lambda done, total: None)
            assert "Days must be from 1 to 90" in text_of(await h.send("/backtest 365"))
        finally:
            tester.close()


# ---------------------------------------------------------------- table, access, audit


def test_every_command_is_in_the_menu_and_help() -> None:
    from handlers.start import help_text

    names = {c.command for c in bot_commands()}
    for wanted in (
        "profit",
        "stats",
        "performance",
        "trades",
        "daily",
        "weekly",
        "monthly",
        "balance",
        "close",
        "logs",
        "health",
        "version",
        "why",
        "backtest",
    ):
        assert wanted in names
    text = help_text(COMMANDS)
    assert "/performance <code>[days]</code>" in text and "(also /perf)" in text and "(also /pos, /p)" in text


async def test_start_brings_the_everyday_keyboard(h: Harness) -> None:
    call = await h.send("/start")
    keyboard = call.params.get("reply_markup")
    assert keyboard and "/status" in str(keyboard) and "/positions" in str(keyboard)


async def test_new_commands_refuse_a_stranger_and_are_audited(h: Harness) -> None:
    await seed(h)
    since = len(h.server.calls)
    h.server.push_message(OTHER, OTHER, "/profit")
    refusal = await h.wait_sent(OTHER, since)
    assert "private bot" in text_of(refusal) and "$" not in text_of(refusal)
    await h.send("/stats 7")
    entries = await h.audits(2)
    by_command = {(e.command, e.user_id): e for e in entries}
    assert by_command[("/profit", OTHER)].allowed is False
    stats = by_command[("/stats", USER)]
    assert stats.allowed and stats.args == "7" and stats.result == "3 trades"


async def test_plain_text_gets_a_hint(h: Harness) -> None:
    text = text_of(await h.send("hello"))
    assert "start with /" in text and "/help" in text and "did you mean" not in text
    assert "/status" in text_of(await h.send("status please"))


# ---------------------------------------------------------------- replies (issue 14)


async def test_risk_out_of_range_speaks_a_traders_words(h: Harness) -> None:
    text = text_of(await h.send("/risk percent 50"))
    assert "risk_per_trade_pct" not in text
    assert "Risk per trade can be above 0 % and at most 5 % of the balance; you asked 50 %" in text
    assert "Max positions can be 1 to 20; you asked 30" in text_of(await h.send("/risk maxpos 30"))
    assert "not a whole number" in text_of(await h.send("/risk maxpos 2.5"))
    assert h.engine.limits.risk_per_trade_pct == 1.0 and h.engine.limits.max_positions == 2


async def test_retrain_with_too_few_bars_says_how_many_and_when(
    fake_telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    started: list[str] = []
    trainer = SimpleNamespace(
        running=False,
        config=SimpleNamespace(min_bars=1_000),
        on_progress=lambda stage, pct: None,
        start=lambda *a, **k: started.append("run"),
    )
    async for h in harness(fake_telegram, tmp_path, trainer=trainer, broker="paper", paper_replay_speed=60.0):
        h.ctx.bars_available = lambda: 240
        text = text_of(await h.send("/retrain"))
        assert "needs 1,000 closed M15 bars and the bot has 240 (760 to go)" in text
        assert "7d 22h of market time" in text and "3h 10m at this paper market's 60× speed" in text
        assert "failed" not in text and started == []


def test_bars_wait_text_without_a_fast_market() -> None:
    from handlers.model import bars_wait_text

    text = bars_wait_text(996, 1000)
    assert "(4 to go)" in text and "1h 00m of market time" in text and "speed" not in text


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name, raising=False)


async def test_console_export_has_its_own_folder_unique_names_and_wib(
    tmp_path: Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_app import make_settings, started

    app = await started(make_settings(tmp_path))
    try:
        assert app.console is not None
        await app.console.handle_line("/export")
        await app.console.handle_line("/export")
        files = sorted((tmp_path / "exports").glob("*.csv"))
        assert len(files) == 2, files  # the second did not overwrite the first
        assert all(f.name.startswith("trades_") and "_WIB" in f.name for f in files)
        assert not list((tmp_path / "photos").glob("*.csv"))
    finally:
        await app.shutdown("test")


async def test_one_approval_press_is_one_edited_card_and_one_result(tmp_path: Path, clean_env: None) -> None:
    from tests.test_app import make_settings, started

    app = await started(make_settings(tmp_path))
    try:
        assert app.console is not None
        transport = app.console.session.transport
        shown: list[tuple[str, str]] = []
        send, edit = transport.send_text, transport.edit_text

        async def on_send(chat: int, text: str, *a: Any, **k: Any) -> Any:
            shown.append(("send", text))
            return await send(chat, text, *a, **k)

        async def on_edit(chat: int, mid: int, text: str, *a: Any, **k: Any) -> Any:
            shown.append(("edit", text))
            return await edit(chat, mid, text, *a, **k)

        transport.send_text, transport.edit_text = on_send, on_edit  # type: ignore[method-assign]
        await app.console.handle_line("/risk percent 2")
        await asyncio.sleep(0.3)
        shown.clear()
        await app.console.handle_line("!1")  # Approve
        for _ in range(50):
            if any("APPLIED" in t for _, t in shown):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert [kind for kind, _ in shown] == ["edit", "send"], shown
        assert "Approved" in shown[0][1] and "RISK CHANGE APPLIED" in shown[1][1]
        assert app.engine.limits.risk_per_trade_pct == 2.0
    finally:
        await app.shutdown("test")
