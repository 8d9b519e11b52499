"""Loss-limit halts: recorded with their date and what they kept out, carried across runs and folds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from research.baselines import buy_and_hold, buy_and_hold_chained, smc_only_config
from research.walkforward import Chained
from trading.backtest import BacktestConfig, run_backtest
from trading.risk.modes import RiskLimits

TIGHT = smc_only_config(BacktestConfig(limits=RiskLimits(total_loss_pct=1.0)))  # $50 of $5,000


@pytest.fixture(scope="module")
def halted(shared_bars: pl.DataFrame):
    first = run_backtest(shared_bars.slice(0, 3000), TIGHT)
    second = run_backtest(
        shared_bars.slice(2800, 900), replace(TIGHT, balance=first.equity[-1]), risk_state=first.risk_state
    )
    return first, second


def test_a_total_limit_halt_has_its_date_reason_and_blocked_setups(halted) -> None:
    first, _ = halted
    assert first.halts, "a 1 % total-loss limit must stop this strategy on 2,800 bars"
    h = first.halts[-1]
    assert h.end is None and "total loss" in h.reason
    assert first.equity_times[0] < h.start <= first.equity_times[-1]
    assert 0 <= h.setups_blocked <= h.bars
    # every decided bar has an equity point at its close; the last bar is never decided (no tick after it)
    assert h.bars == sum(1 for t in first.equity_times[:-1] if t >= h.start)
    assert all(t.open_time < h.start for t in first.trades)  # nothing opened while halted
    assert 0 < first.gate_blocks["risk_mode"] <= h.bars
    assert json.loads(json.dumps(h.to_dict()))["end"] is None


def test_a_total_stop_carries_into_the_next_run_as_a_live_restart_would(halted) -> None:
    first, second = halted
    assert second.trades == []
    assert second.risk_state.reference_balance == pytest.approx(first.risk_state.reference_balance)
    assert [(h.start, h.end, h.bars) for h in second.halts] == [
        (second.equity_times[0], None, second.decisions)
    ]


def test_chained_runs_merge_a_halt_that_goes_on(halted) -> None:
    first, second = halted
    c = Chained(5000.0)
    c.add(first)
    c.add(second)
    assert len(c.halts) == len(first.halts)
    assert c.halts[-1].start == first.halts[-1].start and c.halts[-1].end is None
    assert c.halts[-1].bars == first.halts[-1].bars + second.decisions
    assert c.risk_state is second.risk_state


def test_without_the_carried_state_the_second_window_trades_again(shared_bars: pl.DataFrame, halted) -> None:
    first, _ = halted
    fresh = run_backtest(shared_bars.slice(2800, 900), replace(TIGHT, balance=first.equity[-1]))
    assert fresh.trades, "the reset the walk-forward used to do lets a stopped account trade again"


def test_buy_and_hold_chained_matches_one_window_and_chains_balances(shared_bars: pl.DataFrame) -> None:
    cfg = BacktestConfig()
    a, b = shared_bars.slice(0, 700), shared_bars.slice(500, 700)
    one = buy_and_hold_chained([a], cfg)
    assert one == buy_and_hold(a, cfg)
    two = buy_and_hold_chained([a, b], cfg)
    assert two["trades"] == 2
    assert two["net_profit"] == pytest.approx(
        one["net_profit"] + buy_and_hold(b, cfg)["net_profit"], abs=0.01
    )


def test_backtest_cli_reports_halts_and_random_runs_without_ml(
    shared_bars_path: Path, tmp_path: Path
) -> None:
    from main import main

    data = tmp_path / "bars.parquet"
    pl.read_parquet(shared_bars_path).head(1500).write_parquet(data)
    out = tmp_path / "bt.json"
    assert (
        main(["backtest", "--data", str(data), "--json", str(out), "--plot", str(tmp_path / "eq.png")]) == 0
    )
    body = json.loads(out.read_text())
    assert isinstance(body["halts"], list)
    assert set(body["baselines"]) == {"buy_and_hold", "smc_only", "random"}
    assert (tmp_path / "eq.png").read_bytes()[:4] == b"\x89PNG"


def test_halt_text_and_chart_marks_name_the_date_and_the_limit(halted) -> None:
    from research.report_text import halt_lines, halt_marks

    first, _ = halted
    h = first.halts[-1]
    ((start, end, label),) = halt_marks([h])
    assert (start, end) == (h.start, None) and "total-loss limit" in label and f"{h.start:%m-%d}" in label
    (line,) = halt_lines([h.to_dict()], "SMC-only")
    assert line.startswith("SMC-only halted " + str(h.start)[:16]) and "end of data" in line
    assert f"{h.setups_blocked:,} of them with a setup" in line


def test_the_phone_and_the_report_name_a_halts_limit_the_same_way() -> None:
    from datetime import UTC, datetime

    from bot.backtests import halt_marks as phone_marks
    from research.report_text import halt_marks as report_marks
    from trading.backtest import HaltEvent

    start = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)
    halts = [
        HaltEvent(start, None, "daily loss $310.00 reached the limit $300.00", 4, 1),
        HaltEvent(start, start, "total loss $1,000.00 reached the limit $1,000.00", 2, 0),
        HaltEvent(start, None, "approved stop", 1, 0),
    ]
    assert [h.limit_name for h in halts] == ["daily-loss limit", "total-loss limit", "approved stop"]
    assert [m[2] for m in phone_marks(halts)] == [f"halted: {h.limit_name}" for h in halts]
    assert [m[2] for m in report_marks(halts)] == [f"halted 06-02 05:00 UTC: {h.limit_name}" for h in halts]
