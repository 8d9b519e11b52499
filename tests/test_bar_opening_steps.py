"""A backtest takes a bar's first tick with the quiet (or, with no position open, idle) ticks of the
bar before (`MarketLoop`'s `_opening_step`): its step judges with the bar's inputs still, so when
nothing acts on it the engine's full step is not run, and the bar is then decided at that tick. Exact: the trades, the equity, the
gate counts and the tick counts equal those of a run that steps every bar's first tick."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import polars as pl
import pytest

from trading.backtest import BacktestConfig, BacktestResult, paced_replay, run_backtest
from trading.engine import TradingEngine
from trading.risk.modes import RiskLimits
from trading.simulation import MarketLoop


@pytest.fixture(scope="module")
def bars(shared_bars: pl.DataFrame) -> pl.DataFrame:
    return shared_bars.slice(3000, 700)  # about a week: WIB days roll between bars


def counted_run(
    monkeypatch: pytest.MonkeyPatch, bars: pl.DataFrame, config: BacktestConfig, *, openings: bool
) -> tuple[BacktestResult, int]:
    """The backtest and how many engine steps it ran (with or without bar openings taken quietly)."""
    steps = 0
    on_tick = TradingEngine.on_tick

    async def counting(self: TradingEngine) -> None:
        nonlocal steps
        steps += 1
        await on_tick(self)

    with monkeypatch.context() as patch:
        patch.setattr(TradingEngine, "on_tick", counting)
        if not openings:
            patch.setattr(MarketLoop, "_opening_step", lambda self, bar, last_ms: None)
        result = run_backtest(bars, config)
    return result, steps


@pytest.mark.parametrize(
    "config",
    [
        BacktestConfig(ticks_per_bar=60),
        BacktestConfig(ticks_per_bar=7, limits=RiskLimits(max_positions=3)),
        # tight limits: protected and recovery modes, daily stops and cooldowns change between bars
        BacktestConfig(limits=RiskLimits(daily_loss_pct=0.6, protected_at=0.3, recovery_after_losses=2)),
    ],
    ids=["60 ticks", "7 ticks, 3 positions", "tight limits"],
)
def test_bar_openings_taken_quietly_give_the_same_backtest(
    monkeypatch: pytest.MonkeyPatch, bars: pl.DataFrame, config: BacktestConfig
) -> None:
    fast, fast_steps = counted_run(monkeypatch, bars, config, openings=True)
    slow, slow_steps = counted_run(monkeypatch, bars, config, openings=False)
    walk = run_backtest(bars, replace(config, skip_quiet=False, skip_idle=False))
    assert len(walk.trades) >= 10
    for other in (slow, walk):
        assert fast.trades == other.trades
        assert fast.opened == other.opened
        assert fast.equity.tolist() == other.equity.tolist()
        assert fast.gate_blocks == other.gate_blocks
        assert fast.decisions == other.decisions
        assert fast.halts == other.halts and fast.risk_state == other.risk_state
    # the counts a report prints do not depend on it: an opening taken quietly counts as stepped
    assert (fast.ticks, fast.ticks_skipped) == (slow.ticks, slow.ticks_skipped)
    assert fast_steps < slow_steps * 0.5  # most bar openings were not stepped


def test_a_paced_backtest_decides_no_bar_before_its_first_tick_is_due(
    monkeypatch: pytest.MonkeyPatch, bars: pl.DataFrame
) -> None:
    """At a replay speed the loop runs only the ticks due, so a bar's opening is never taken ahead."""
    asked: list[object] = []
    opening_step = MarketLoop._opening_step

    def watched(self: MarketLoop, bar: int, last_ms: int) -> object:
        found = opening_step(self, bar, last_ms)
        asked.append(found)
        return found

    monkeypatch.setattr(MarketLoop, "_opening_step", watched)
    config = BacktestConfig(ticks_per_bar=20)
    paced = paced_replay(bars, config, speed=50_000.0)
    assert asked and all(found is None for found in asked)
    assert paced.trades == run_backtest(bars, config).trades


def test_a_loop_with_a_step_hook_tells_it_of_every_bar_opening(
    monkeypatch: pytest.MonkeyPatch, bars: pl.DataFrame
) -> None:
    """A step hook (the App's trading job, the shadow replay) is told of each bar's opening step, so no
    opening is taken with the bar before, even where the idle ticks of a flat bar are taken in one go."""
    told: list[object] = []  # the clock at each step the hook was told of
    openings: list[object] = []  # the clock at each bar decided: its opening tick's step
    init = MarketLoop.__init__

    def hooked(self: MarketLoop, *args: Any, **kw: Any) -> None:
        decided = kw["on_decision"]

        def at_decision(closed: int, window: pl.DataFrame, decision: Any) -> Any:
            openings.append(self.clock.now)
            return decided(closed, window, decision)

        init(self, *args, **(kw | {"on_step": told.append, "on_decision": at_decision}))

    monkeypatch.setattr(MarketLoop, "__init__", hooked)
    result = run_backtest(bars, BacktestConfig(ticks_per_bar=60))
    assert result.decisions == len(openings) > 400
    assert set(openings) <= set(told)
