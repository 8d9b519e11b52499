"""Facts with one source: the risk-limit bounds (settings, /risk and RiskLimits read
`trading.risk.modes.LIMIT_BOUNDS`) and the flash-crash threshold (the settings' FLASH_CRASH_PCT reaches
the analyzer's crisis flag, as it reaches the engine's guard)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bot.config import SettingsError, load_settings
from handlers.risk import UsageError, parse_change
from trading.analyzer import AnalysisFrame, MarketAnalyzer
from trading.risk.modes import LIMIT_BOUNDS, RiskLimits
from trading.synthetic import generate_bars


class _Snap:
    limits = RiskLimits()


@pytest.mark.parametrize("name", sorted(LIMIT_BOUNDS))
def test_settings_risk_command_and_limits_accept_exactly_the_same_range(name: str, monkeypatch) -> None:
    for env in list(os.environ):
        if env.startswith(("RISK_", "MAX_POSITIONS", "DAILY_", "TOTAL_")):
            monkeypatch.delenv(env)
    bound = LIMIT_BOUNDS[name]
    word = {
        "risk_per_trade_pct": "percent",
        "daily_loss_pct": "daily",
        "total_loss_pct": "total",
        "max_positions": "maxpos",
    }[name]
    step = 1 if name == "max_positions" else 0.001
    inside = [bound.high, bound.low if bound.low_inclusive else bound.low + step]
    outside = [bound.high + step, bound.low - step if bound.low_inclusive else bound.low]
    # the settings also want the total limit at least the daily one
    other = (
        {"total_loss_pct": 100.0}
        if name == "daily_loss_pct"
        else {"daily_loss_pct": 0.001}
        if name == "total_loss_pct"
        else {}
    )
    for value in inside:
        assert getattr(load_settings(None, **{name: value}, **other), name) == value
        assert getattr(replace(RiskLimits(), **{name: value}), name) == value
        assert parse_change(f"{word} {value:g}", _Snap()).params == {name: value}  # type: ignore[arg-type]
    for value in outside:
        with pytest.raises(SettingsError, match=name.upper()):
            load_settings(None, **{name: value}, **other)
        with pytest.raises(ValueError, match=name):
            replace(RiskLimits(), **{name: value})
        with pytest.raises(UsageError):
            parse_change(f"{word} {value:g}", _Snap())  # type: ignore[arg-type]


def _bars_with_a_move(pct: float) -> pl.DataFrame:
    """Quiet bars, then a close move of `pct` % over the last five closes."""
    bars = generate_bars(300, seed=2)
    close = bars["close"].to_numpy().copy()
    close[-5:] = close[-5] * (1 + np.linspace(0, pct / 100, 5))
    return bars.with_columns(
        pl.Series("close", close),
        pl.max_horizontal("high", pl.Series(close)).alias("high"),
        pl.min_horizontal("low", pl.Series(close)).alias("low"),
    )


def test_the_crisis_flag_follows_the_flash_crash_setting() -> None:
    bars = _bars_with_a_move(2.0)  # below the default 2.5 %, above a setting of 1.5 %
    assert AnalysisFrame.build(bars).at(-1).regime.name != "crisis"
    assert MarketAnalyzer()(bars).regime.name != "crisis"
    assert AnalysisFrame.build(bars, flash_crash_pct=1.5).at(-1).regime.name == "crisis"
    assert MarketAnalyzer(flash_crash_pct=1.5)(bars).regime.name == "crisis"
    assert (
        MarketAnalyzer(flash_crash_pct=1.5, flash_crash_bars=2)(bars).regime.name != "crisis"
    )  # 0.5 % in 2 bars


async def test_the_app_gives_the_analyzer_the_settings_flash_crash_threshold(
    tmp_path: Path, monkeypatch
) -> None:
    from bot.app import App

    for env in list(os.environ):
        if env.startswith(("TELEGRAM_", "BROKER", "PAPER_", "DATABASE_PATH", "MODELS_DIR", "FLASH_")):
            monkeypatch.delenv(env)
    settings = load_settings(
        None,
        database_path=tmp_path / "x.db",
        models_dir=tmp_path / "m",
        paper_replay_speed=3000,
        flash_crash_pct=1.5,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
    )
    app = App(settings, console_input=False)
    await app.start()
    try:
        assert app.analyzer.flash_crash_pct == 1.5 == app.engine.params.flash_crash_pct
    finally:
        await app.shutdown("test")
