"""Taking the quiet ticks of an open position in one go (PaperBroker.quiet_ticks, QuietTicks.take_open_ticks)
is exact: on real bars with positions open, with the generated path and with M1 detail, the trade list, the
opened trades, the equity and the gate counts equal those of the tick-by-tick walk, and fewer ticks are stepped."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from trading.backtest import BacktestConfig, BacktestResult, run_backtest
from trading.broker.paper import PaperBroker
from trading.flash_crash import TickWindow
from trading.intrabar import GeneratedPath, M1Detail, RealTicks, synthetic_truth, walk_all
from trading.parameters import StrategyParams
from trading.quiet_ticks import QuietTicks
from trading.risk.modes import RiskLimits, RiskState


def m1_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """M1 bars whose M15 aggregate is each bar (the 60-tick generated path, 4 ticks a minute)."""
    times, bid, _ask = walk_all(GeneratedPath(bars, 60), bars.height)
    ticks = pl.DataFrame({"ms": times, "bid": bid}).with_columns(
        (pl.col("ms") // 60_000 * 60_000).alias("minute")
    )
    m1 = ticks.group_by("minute", maintain_order=True).agg(
        open=pl.col("bid").first(),
        high=pl.col("bid").max(),
        low=pl.col("bid").min(),
        close=pl.col("bid").last(),
    )
    spread = bars.select(pl.col("spread").repeat_by(15).explode())["spread"]
    return m1.with_columns(
        pl.col("minute")
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
        .dt.cast_time_unit("us")
        .alias("time"),
        pl.lit(4, pl.Int64).alias("tick_volume"),
        spread.alias("spread"),
        pl.lit(0, pl.Int64).alias("real_volume"),
    ).select("time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume")


def assert_same(fast: BacktestResult, slow: BacktestResult) -> None:
    assert (
        fast.trades == slow.trades
    )  # every field: times, prices, profit, reason, the (moved) stop, the detail
    assert fast.opened == slow.opened
    assert fast.equity.tolist() == slow.equity.tolist()
    assert fast.gate_blocks == slow.gate_blocks
    assert fast.decisions == slow.decisions


@pytest.fixture(scope="module")
def bars(shared_bars: pl.DataFrame) -> pl.DataFrame:
    return shared_bars.slice(5000, 900)


@pytest.mark.parametrize("ticks_per_bar", [60, 7])
def test_generated_path_same_trades_with_and_without_the_quiet_skip(
    bars: pl.DataFrame, ticks_per_bar: int
) -> None:
    config = BacktestConfig(ticks_per_bar=ticks_per_bar)
    fast = run_backtest(bars, config)
    slow = run_backtest(bars, replace(config, skip_quiet=False))
    assert len(slow.trades) >= 15
    reasons = {t.reason for t in slow.trades}
    assert len(reasons) >= 3, reasons  # broker stops and software exits both occur on the slice
    assert any(t.sl != o.sl for t in slow.trades for o in slow.opened if o.ticket == t.ticket), (
        "no stop moved"
    )
    assert_same(fast, slow)
    assert fast.ticks < slow.ticks / 2  # most open-position ticks were taken without a step


def test_m1_detail_same_trades_with_and_without_the_quiet_skip(bars: pl.DataFrame) -> None:
    m1 = m1_bars(bars)
    config = BacktestConfig()
    fast = run_backtest(bars, config, path=lambda f: M1Detail(f, m1))
    slow = run_backtest(bars, replace(config, skip_quiet=False), path=lambda f: M1Detail(f, m1))
    assert len(slow.trades) >= 15
    assert_same(fast, slow)
    assert fast.ticks < slow.ticks


def test_real_ticks_several_a_second_same_trades_with_and_without_the_quiet_skip() -> None:
    """Ticks 3 a second (a step runs on the first of each second only), 2,700 a bar: exact too."""
    truth = synthetic_truth(420, seed=4, tick_seconds=1, vol_per_second=0.03)
    ticks = pl.concat(
        [
            truth.ticks.with_columns(
                (pl.col("time_msc") + offset).alias("time_msc"),
                (pl.col("bid") + move).round(2).alias("bid"),
                (pl.col("ask") + move).round(2).alias("ask"),
            )
            for offset, move in ((0, 0.0), (300, 0.01), (600, -0.01))
        ]
    ).sort("time_msc")
    config = BacktestConfig(warmup_bars=100)
    fast = run_backtest(truth.m15, config, path=lambda f: RealTicks(f, ticks))
    slow = run_backtest(truth.m15, replace(config, skip_quiet=False), path=lambda f: RealTicks(f, ticks))
    assert len(slow.trades) >= 10
    assert_same(fast, slow)
    assert fast.ticks < slow.ticks / 50


def test_several_positions_open_same_trades_with_and_without_the_quiet_skip(bars: pl.DataFrame) -> None:
    config = BacktestConfig(limits=RiskLimits(max_positions=5))
    fast = run_backtest(bars, config)
    slow = run_backtest(bars, replace(config, skip_quiet=False))
    assert (
        max(
            sum(
                1
                for o in slow.opened
                if o.open_time <= t.close_time
                and o.ticket != t.ticket
                and any(c.ticket == o.ticket and c.close_time > t.close_time for c in slow.trades)
            )
            for t in slow.trades
        )
        >= 2
    )  # at least three positions open at once
    assert_same(fast, slow)


@pytest.mark.parametrize("mode", ["generated 60", "M1 detail"])
def test_both_skips_together_equal_the_walk_of_every_tick(bars: pl.DataFrame, mode: str) -> None:
    """Idle bars taken in one go through their last tick, and quiet open-position ticks, against
    stepping every tick of every bar."""
    config = BacktestConfig(ticks_per_bar=60)
    path = None
    if mode == "M1 detail":
        m1 = m1_bars(bars)
        path = lambda f: M1Detail(f, m1)  # noqa: E731
    fast = run_backtest(bars, config, path=path)
    slow = run_backtest(bars, replace(config, skip_idle=False, skip_quiet=False), path=path)
    assert_same(fast, slow)
    assert fast.halts == slow.halts and fast.risk_state == slow.risk_state
    assert fast.ticks < slow.ticks / 4


def test_idle_ticks_leave_the_flash_window_as_steps_would_with_several_ticks_a_second() -> None:
    """`take_idle_ticks` adds only the stepped ticks (the first of each second) to the flash-crash window
    and cuts it to the window before the last of them, as stepping the ticks one by one does."""
    rng = random.Random(5)
    start = datetime(2026, 3, 10, 3, tzinfo=UTC)  # 10:00 WIB: no day roll within the ticks
    params = StrategyParams()
    for _ in range(200):
        engine = SimpleNamespace(
            positions={},
            closes_in_flight=lambda: False,
            state=RiskState.fresh(10_000.0, start),
            params=params,
            flash_window=TickWindow(),
        )
        ms = int(start.timestamp() * 1000)
        stepped = TickWindow()
        for _ in range(rng.randrange(0, 6)):  # what earlier steps left
            ms += rng.choice([300, 1000, 20_000])
            mid = 3000 + rng.uniform(-5, 5)
            for window in (engine.flash_window, stepped):
                window.add(datetime.fromtimestamp(ms / 1000, UTC), mid, 60)
        last_step = ms // 1000
        times, bids = [], []
        for _ in range(rng.randrange(1, 90)):
            ms += rng.choice([0, 200, 400, 999, 1000, 7000])
            times.append(ms)
            bids.append(round(3000 + rng.uniform(-5, 5), 2))
        asks = [b + 0.3 for b in bids]
        quiet = QuietTicks(engine, PaperBroker())  # type: ignore[arg-type]
        taken = quiet.take_idle_ticks(np.array(times), np.array(bids), np.array(asks), last_step, 1000)
        assert taken  # no position, moves far below the guard's threshold, one WIB day
        step = last_step
        for t, bid, ask in zip(times, bids, asks, strict=True):
            if t // 1000 != step:
                step = t // 1000
                stepped.add(datetime.fromtimestamp(t / 1000, UTC), (bid + ask) / 2, 60)
        assert list(engine.flash_window.ticks) == list(stepped.ticks)
        assert engine.flash_window.move_pct() == stepped.move_pct()
