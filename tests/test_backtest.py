"""Backtest over slices of the real bars: trades and metrics, determinism, and the live/backtest parity.

The parity test replays the same bars twice through the same engine and paper broker: once with the
backtest's precomputed analysis, once with the live MarketAnalyzer recomputing from the feed's closed
bars on every bar close. Their trade lists must be identical.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.backtest import BacktestConfig, BacktestResult, compute_metrics, live_replay, run_backtest
from trading.domain import ClosedTrade, Side
from trading.records import MemoryRecorder

METRIC_KEYS = {
    "trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "net_profit",
    "max_drawdown_pct",
    "sharpe",
    "sortino",
    "calmar",
    "avg_hold_minutes",
    "exit_reasons",
    "by_session",
    "by_regime",
}


def key(t: ClosedTrade) -> tuple:
    return (
        t.ticket,
        t.side,
        t.volume,
        t.open_time,
        t.open_price,
        t.close_time,
        t.close_price,
        t.profit,
        t.reason,
    )


@pytest.fixture(scope="module")
def bars2500(shared_bars: pl.DataFrame) -> pl.DataFrame:
    return shared_bars.head(2500)


@pytest.fixture(scope="module")
def bars1500(shared_bars: pl.DataFrame) -> pl.DataFrame:
    return shared_bars.head(1500)


@pytest.fixture(scope="module")
def result2500(bars2500: pl.DataFrame) -> BacktestResult:
    return run_backtest(bars2500)


@pytest.fixture(scope="module")
def result1500(bars1500: pl.DataFrame) -> BacktestResult:
    return run_backtest(bars1500)


def test_backtest_trades_and_metrics(result2500: BacktestResult) -> None:
    r = result2500
    assert r.bars == 2500 - BacktestConfig().warmup_bars
    assert len(r.trades) >= 20 and r.decisions == r.bars - 1  # the last close has no tick after it to fill at
    m = r.metrics()
    assert set(m) >= METRIC_KEYS
    assert m["trades"] == len(r.trades)
    assert 0.0 <= m["win_rate"] <= 1.0
    assert m["net_profit"] == pytest.approx(sum(t.profit for t in r.trades), abs=0.01)
    assert m["expectancy"] == pytest.approx(m["net_profit"] / m["trades"], abs=0.01)
    assert m["max_drawdown_pct"] >= 0 and m["avg_hold_minutes"] > 0
    assert sum(m["exit_reasons"].values()) == m["trades"]
    assert sum(g["trades"] for g in m["by_session"].values()) == m["trades"]
    assert sum(g["trades"] for g in m["by_regime"].values()) == m["trades"]
    assert set(r.gate_blocks) <= {
        "flash_crash_guard",
        "session",
        "news_blackout",
        "risk_mode",
        "smc_setup",
        "ml_confidence",
        "ml_agreement",
        "market_quality",
        "confirmation",
        "pullback",
        "cooldown",
        "position_limit",
        "lot_size",
        "spread_limit",
        "regime_sleep",
    }
    assert r.gate_blocks["smc_setup"] > 0


def test_every_trade_is_real_money(result2500: BacktestResult) -> None:
    """Each closed trade's profit is its price move x 100 oz x lots (no commission), stops were at the broker,
    the band's lots were kept and never more than 2 positions were open at once."""
    r = result2500
    opened = {o.ticket: o for o in r.opened}
    assert {t.ticket for t in r.trades} == set(opened)  # every opened trade is closed and counted
    for t in r.trades:
        o = opened[t.ticket]
        assert t.profit == pytest.approx(
            (t.close_price - t.open_price) * t.side.sign * 100 * t.volume, abs=0.011
        )
        assert 0.01 <= t.volume <= 0.02
        assert o.sl > 0 and o.tp > 0
        assert (o.open_price - o.sl) * o.side.sign > 0 and (o.tp - o.open_price) * o.side.sign > 0
        assert (o.open_price - o.sl) * o.side.sign * 100 * o.volume <= 0.02 * 5_000 * 1.2  # emergency cap
        assert t.close_time >= t.open_time
    events = sorted(
        [(t.open_time, 1) for t in r.trades] + [(t.close_time, -1) for t in r.trades],
        key=lambda e: (e[0], e[1]),
    )
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    assert peak <= 2


def test_equity_ends_at_start_balance_plus_profits(
    result1500: BacktestResult, result2500: BacktestResult
) -> None:
    for r in (result1500, result2500):
        assert r.equity[-1] == pytest.approx(r.start_balance + sum(t.profit for t in r.trades), abs=0.01)
        assert len(r.equity) == len(r.equity_times) == r.decisions + 1 == r.bars  # each close, and the end


def test_backtest_is_deterministic(bars1500: pl.DataFrame, result1500: BacktestResult) -> None:
    again = run_backtest(bars1500)
    assert [key(t) for t in again.trades] == [key(t) for t in result1500.trades]
    assert again.gate_blocks == result1500.gate_blocks
    assert again.metrics() == result1500.metrics()


def test_decisions_kept_in_full_reach_the_same_verdicts(
    bars1500: pl.DataFrame, result1500: BacktestResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backtest's recorder keeps no decisions, so they stop at the first blocking gate: the same run
    with every gate, lot and feature recorded (as live) trades and blocks the same."""
    import trading.backtest as bt

    monkeypatch.setattr(bt, "MemoryRecorder", lambda keep_decisions=True: MemoryRecorder(keep_decisions=True))
    full = run_backtest(bars1500)
    assert [key(t) for t in full.trades] == [key(t) for t in result1500.trades]
    assert full.opened == result1500.opened and full.gate_blocks == result1500.gate_blocks
    assert full.equity.tolist() == result1500.equity.tolist()


def test_live_replay_and_backtest_make_identical_trades(
    bars1500: pl.DataFrame, result1500: BacktestResult
) -> None:
    live = live_replay(bars1500)
    assert len(result1500.trades) >= 20
    assert [key(t) for t in live.trades] == [key(t) for t in result1500.trades]
    assert live.gate_blocks == result1500.gate_blocks
    assert live.decisions == result1500.decisions
    assert live.equity.tolist() == pytest.approx(result1500.equity.tolist())


def test_tail_positions_are_closed_at_the_end(shared_bars: pl.DataFrame) -> None:
    r = run_backtest(shared_bars.head(700))
    assert {t.ticket for t in r.trades} == {o.ticket for o in r.opened}
    assert r.equity[-1] == pytest.approx(r.start_balance + sum(t.profit for t in r.trades), abs=0.01)


def test_commission_lowers_the_result(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.head(700)
    free = run_backtest(bars)
    paid = run_backtest(bars, BacktestConfig(commission_per_lot=7.0))
    assert len(free.trades) > 0
    first_free, first_paid = free.trades[0], paid.trades[0]  # the same trade before any sizing diverges
    assert (first_paid.open_time, first_paid.open_price) == (first_free.open_time, first_free.open_price)
    assert first_paid.profit == pytest.approx(first_free.profit - 7.0 * 2 * first_paid.volume, abs=0.011)
    assert paid.equity[-1] == pytest.approx(paid.start_balance + sum(t.profit for t in paid.trades), abs=0.01)


def test_compute_metrics_known_answer() -> None:
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    trades = [
        ClosedTrade(
            1, "XAUUSD", Side.BUY, 0.01, 3000.0, 3020.0, start, start + timedelta(minutes=30), 20.0, "tp"
        ),
        ClosedTrade(
            2,
            "XAUUSD",
            Side.SELL,
            0.01,
            3020.0,
            3030.0,
            start + timedelta(hours=1),
            start + timedelta(hours=2),
            -10.0,
            "max_loss",
        ),
        ClosedTrade(
            3,
            "XAUUSD",
            Side.BUY,
            0.01,
            3030.0,
            3040.0,
            start + timedelta(hours=3),
            start + timedelta(hours=3, minutes=30),
            10.0,
            "tp",
        ),
    ]
    times = [start, start + timedelta(hours=1), start + timedelta(hours=2), start + timedelta(hours=4)]
    equity = np.array([1000.0, 1020.0, 1010.0, 1020.0])
    m = compute_metrics(trades, [], times, equity, 1000.0)
    assert m["trades"] == 3 and m["win_rate"] == pytest.approx(0.6667, abs=1e-4)
    assert m["profit_factor"] == 3.0 and m["expectancy"] == pytest.approx(6.67, abs=0.01)
    assert m["net_profit"] == 20.0
    assert m["max_drawdown_pct"] == pytest.approx(10 / 1020 * 100, abs=0.01)
    assert m["avg_hold_minutes"] == 40.0
    assert m["exit_reasons"] == {"tp": 2, "max_loss": 1}
    assert m["by_session"] == {"unknown": {"trades": 3, "net_profit": 20.0, "win_rate": 0.6667}}
