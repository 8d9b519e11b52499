"""Scheduled reports: the market update and hourly analysis from a hand-made snapshot, and the daily
summary from a real journal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.reports import DayReport, daily_summary, day_report, decision_line, hourly_analysis, market_update
from bot.store import Journal
from bot.transport import html_to_text
from charts.style import PNG_SIGNATURE
from trading.analysis import MarketAnalysis, MLView, QualityView, RegimeView
from trading.domain import AccountInfo, ClosedTrade, Position, Side
from trading.engine import EngineSnapshot
from trading.gates import GateResult
from trading.records import Decision
from trading.risk.modes import ModeDecision, RiskLimits, RiskMode, RiskState
from trading.sessions import session_at

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 15:00 WIB, Monday
DAY = date(2026, 3, 2)
ALLOWED = {"b", "i", "code", "/b", "/i", "/code"}


@dataclass(frozen=True)
class Setup:
    side: Side = Side.BUY
    entry: float = 2350.0
    stop_loss: float = 2345.0
    take_profit: float = 2360.0
    risk_reward: float = 2.0
    confidence: float = 0.7
    reason: str = "bullish <FVG> retest"


def analysis(p_up: float = 0.72, level: str = "GOOD") -> MarketAnalysis:
    return MarketAnalysis(
        bar_time=NOW - timedelta(minutes=15),
        close=2351.25,
        atr=4.8,
        spread_points=25,
        setup=Setup(),
        regime=RegimeView("medium", 1, 0.8, 1.0, "TRADE"),
        ml=MLView(p_up),
        quality=QualityView(68.0, level, 0.6),
        session=session_at(NOW),
        indicators={"ema_9": 2350.0, "ema_21": 2348.0},
        h1_bias=1,
    )


def snapshot(
    a: MarketAnalysis | None = None,
    positions: tuple[Position, ...] = (),
    paused: bool = False,
    risk: RiskState | None = None,
) -> EngineSnapshot:
    risk = risk or replace(
        RiskState.fresh(1000.0, NOW), daily_realized=-12.0, daily_trades=2, daily_wins=1, consecutive_losses=1
    )
    return EngineSnapshot(
        time=NOW,
        account=AccountInfo(1, 988.0, 990.5, 10.0, 980.0),
        positions=positions,
        mode=ModeDecision(RiskMode.NORMAL, "within limits"),
        paused=paused,
        risk=risk,
        limits=RiskLimits(),
        analysis=a,
        last_decision=None,
        pending_approvals=(),
        timing={"fetch": (1.2, 8.5), "analysis": (40.0, 95.1)},
        started=NOW - timedelta(hours=26, minutes=10),
    )


POS = Position(
    ticket=77,
    symbol="XAUUSD",
    side=Side.BUY,
    volume=0.01,
    open_price=2348.0,
    open_time=NOW - timedelta(minutes=65),
    sl=2343.0,
    tp=2358.0,
    profit=2.5,
)


def check_html(html: str) -> str:
    assert 0 < len(html) < 4096
    assert {t.split()[0] for t in re.findall(r"<([^>]+)>", html)} <= ALLOWED, html
    return html_to_text(html)


def test_meta_model_is_read_against_its_own_fitted_floor() -> None:
    from dataclasses import replace as _replace

    a = analysis()
    meta = _replace(a, ml=MLView(p_up=0.45, p_win=0.45, side=Side.BUY, min_prob=0.42))
    text = check_html(market_update(snapshot(meta, ())))
    assert "P(win) 45% for the BUY setup / floor 42%" in text and "Status: ✅ READY" in text
    below = _replace(a, ml=MLView(p_up=0.40, p_win=0.40, side=Side.BUY, min_prob=0.42))
    assert "Status: ⛔ WAIT" in check_html(market_update(snapshot(below, ())))


def test_market_update_contents() -> None:
    text = check_html(market_update(snapshot(analysis(), (POS,))))
    for piece in (
        "MARKET UPDATE",
        "XAUUSD: 2,351.25 (bar 15:00 WIB)",
        "ATR: 4.80 | Spread: 25 pts",
        "ML: 🟢 BUY 72% / thr 60%",
        "SMC: BUY (70%) bullish <FVG> retest",
        "Quality: GOOD (68)",
        "Trend: UPTREND | H1: BULLISH",
        "Regime: medium (TRADE)",
        "Status: ✅ READY",
        "Daily Loss: $12.00 / $30.00 | Streak 1L",
        "Positions (1)",
        "#77 BUY 0.01 +$2.50",
        "SL 2,343.00 TP 2,358.00 · 1h 05m",
        "⏰ 15:00 WIB",
    ):
        assert piece in text, piece


def test_market_update_waits_below_threshold_or_on_avoid_and_without_analysis() -> None:
    low = check_html(market_update(snapshot(analysis(p_up=0.45))))
    assert "ML: ⚪ SELL 55% / thr 60%" in low and "⛔ WAIT" in low and "Positions" not in low
    avoid = check_html(market_update(snapshot(analysis(level="avoid"), paused=True)))
    assert "⛔ WAIT" in avoid and "Paused" in avoid
    last = replace(snapshot(analysis()), last_decision=decisions()[2])
    assert "Last bar: 14:15 BUY ⛔ ml_confidence: 0.55 < <0.60>" in check_html(market_update(last))
    empty = check_html(market_update(snapshot(None)))
    assert "No analysis yet" in empty and "Mode: NORMAL" in empty


def decisions() -> list[Decision]:
    def d(
        minutes_ago: int, action: str, gates: tuple[GateResult, ...], side: Side | None = Side.BUY
    ) -> Decision:
        return Decision(
            bar_time=NOW - timedelta(minutes=minutes_ago + 15),
            action=action,
            side=side,
            reason="r",
            gates=gates,
            regime="medium",
            p_up=0.64,
            threshold=0.6,
        )

    ok = GateResult("session", True, "London")
    return [
        d(75, "skip", (ok, GateResult("smc_setup", False, "no setup", skipped=True)), None),  # 5th: dropped
        d(0, "enter", (ok,)),
        d(45, "skip", (ok, GateResult("ml_confidence", False, "0.55 < <0.60>"))),
        d(15, "skip", (ok, GateResult("cooldown", False, "120 s since the last entry"))),
        d(30, "skip", (ok, GateResult("spread", False, "spread 60 > 50"))),
    ]


def test_hourly_analysis_shows_the_last_four_bars_and_the_blocking_gate() -> None:
    text = check_html(hourly_analysis(snapshot(analysis(), (POS,)), decisions()))
    lines = [line for line in text.splitlines() if re.match(r"^[├└] \d\d:\d\d ", line)]
    assert [line[2:7] for line in lines] == ["14:15", "14:30", "14:45", "15:00"]  # oldest first, newest 4
    assert "14:15 BUY ⛔ ml_confidence: 0.55 < <0.60> p_up 64%" in text
    assert "14:30 BUY ⛔ spread: spread 60 > 50" in text
    assert "15:00 BUY ✅ enter" in text
    for piece in (
        "HOURLY 15:00 WIB",
        "Bal: $988.00 | Eq: $990.50",
        "Float: +$2.50",
        "Day P/L: -$12.00 (2 trades)",
        "Uptime: 1d 02h",
        "fetch: p50 1.2 ms p99 8.5 ms",
        "Quality: GOOD (68) → ✅ READY",
        "⏰ 2026-03-02 15:00 WIB",
    ):
        assert piece in text, piece


def test_hourly_analysis_names_as_many_bars_as_it_lists() -> None:
    assert "Last 4 bars" in hourly_analysis(snapshot(analysis(), (POS,)), decisions())
    two = hourly_analysis(snapshot(analysis(), (POS,)), decisions()[-2:])
    assert "Last 2 bars" in two and "Last 4" not in two
    assert "Last bar</b>" in hourly_analysis(snapshot(analysis(), (POS,)), decisions()[-1:])


def test_hourly_analysis_with_nothing_yet() -> None:
    text = check_html(hourly_analysis(snapshot(None), []))
    assert "no closed bar decided yet" in text and "No positions" in text


def test_decision_line_with_a_journal_record() -> None:
    from bot.store import DecisionRecord
    from bot.store import GateResult as StoredGate

    rec = DecisionRecord(
        id=1,
        bar_time=NOW - timedelta(minutes=15),
        action="skip",
        side=None,
        p_up=None,
        regime="low",
        confidence=None,
        threshold=0.6,
        reason="session: Asian",
        gates=(StoredGate("flash_crash_guard", True), StoredGate("session", False, "Asian")),
        lot=None,
        created_at=NOW,
    )
    assert html_to_text(decision_line(rec)) == "15:00 — ⛔ session: Asian"


# ---------------------------------------------------------------------------------------- daily


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = Journal(tmp_path / "journal.db")
    await j.open()
    try:
        yield j
    finally:
        await j.close()


def closed(ticket: int, profit: float, close_at: datetime, side: Side = Side.BUY) -> ClosedTrade:
    return ClosedTrade(
        ticket=ticket,
        symbol="XAUUSD",
        side=side,
        volume=0.01,
        open_price=2340.0,
        close_price=2340.0 + profit * side.sign,
        open_time=close_at - timedelta(minutes=30),
        close_time=close_at,
        profit=profit,
        reason="smart_take_profit",
    )


async def test_daily_summary_with_two_closed_trades(journal: Journal) -> None:
    # 2026-03-02 WIB runs from 2026-03-01 17:00 UTC to 2026-03-02 17:00 UTC
    await journal.record_trade_close(closed(1, 15.0, datetime(2026, 3, 2, 2, 0, tzinfo=UTC)))
    await journal.record_trade_close(closed(2, -5.5, datetime(2026, 3, 2, 4, 0, tzinfo=UTC), Side.SELL))
    await journal.record_trade_close(
        closed(3, 99.0, datetime(2026, 3, 1, 16, 0, tzinfo=UTC))
    )  # the day before
    for hour, bal, eq in ((1, 1000.0, 1000.0), (3, 1015.0, 1013.0), (5, 1009.5, 1009.5)):
        await journal.record_equity(datetime(2026, 3, 2, hour, 0, tzinfo=UTC), bal, eq, 0)
    html, png = await daily_summary(journal, DAY)
    text = check_html(html)
    for piece in (
        "🎉 DAILY REPORT 2026-03-02",
        "P/L: +$9.50 (+0.95%)",
        "Gross Win: +$15.00 | Gross Loss: -$5.50",
        "Bal Start: $1,000.00",
        "Bal End: $1,009.50",
        "Total: 2 | Wins 1 | Losses 1",
        "Win Rate: 50.0%",
        "Profit Factor: 2.73",
        "Avg/Trade: +$4.75",
        "Best: ✅ #1 BUY: +$15.00",
        "Worst: ❌ #2 SELL: -$5.50",
    ):
        assert piece in text, piece
    assert "#3" not in text
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000


async def test_daily_summary_prefers_the_live_snapshot_and_handles_no_trades(journal: Journal) -> None:
    html, png = await daily_summary(journal, DAY, snapshot(None))
    text = check_html(html)
    assert "➖ DAILY REPORT 2026-03-02" in text and "No trades on 2026-03-02." in text
    assert "Bal Start: $1,000.00" in text and "Bal End: $988.00" in text and "⏰ 15:00 WIB" in text
    assert png.startswith(PNG_SIGNATURE)


async def test_day_report_without_equity_snapshots_builds_the_balance_curve(journal: Journal) -> None:
    await journal.record_trade_close(closed(1, -3.0, datetime(2026, 3, 2, 2, 0, tzinfo=UTC)))
    await journal.record_trade_close(closed(2, -2.0, datetime(2026, 3, 2, 3, 0, tzinfo=UTC)))
    risk = RiskState.fresh(500.0, NOW)
    report = await day_report(journal, DAY, snapshot(None, risk=risk))
    assert isinstance(report, DayReport)
    assert report.start_balance == 500.0 and report.end_balance == 988.0  # live account wins for today
    assert report.profit_factor == 0.0 and report.win_rate == 0.0
    assert [t.ticket for t in report.trades] == [1, 2] and report.net == -5.0
    summary = report.summary()
    assert (summary.trades, summary.wins, summary.losses, summary.profit) == (2, 0, 2, -5.0)
    await journal.record_daily_summary(summary)
    html, png = await daily_summary(journal, DAY, snapshot(None, risk=risk))
    assert "📉 DAILY REPORT" in html_to_text(html) and png.startswith(PNG_SIGNATURE)


def test_profit_factor_edges() -> None:
    empty = DayReport(DAY, (), (), None, None)
    assert empty.profit_factor is None and empty.win_rate is None and empty.best() is None
