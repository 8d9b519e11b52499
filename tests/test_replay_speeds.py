"""The bot itself (App, its 1-second job, the journal) on a paper replay at two speeds: the same bars give
the same decisions and the same trades, whatever the speed and whenever the job happens to run."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import load_settings
from trading.synthetic import generate_bars
from trading.timezones import ServerClock


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)


async def replay(
    tmp_path: Path, bars_file: Path, speed: float, decisions: int
) -> tuple[list[Any], list[Any]]:
    settings = load_settings(
        None,
        database_path=tmp_path / "x.db",
        models_dir=tmp_path / "models",
        paper_feed="replay",
        paper_replay_file=str(bars_file),
        paper_replay_speed=speed,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
        analysis_history_bars=300,
        disabled_gates="h1_bias,hours_9_21,confirmation,pullback,session,spread_limit,market_quality",
        cooldown_seconds=0,
    )
    app = App(settings, console_input=False)
    await app.start()
    app.scheduler.pause()  # the test is the 1-second job, at uneven moments
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while app.market_loop.decisions < decisions and asyncio.get_running_loop().time() < deadline:
            await app.trading_job.run()
            await asyncio.sleep(0.003 if speed > 4000 else 0.011)
        assert app.market_loop.decisions >= decisions
        assert app.guard is not None
        assert await app.guard.drain()  # the skip rows still being written aside (as at shutdown)
        rows = await app.journal.decisions(limit=10_000)
        made = sorted((d.bar_time, d.action, d.reason) for d in rows)[:decisions]
        last_bar = made[-1][0]
        trades = await app.journal.trades(limit=10_000)
        opened = sorted(
            (t.ticket, str(t.side), t.volume, t.open_price, t.open_time)
            for t in trades
            if t.open_time <= last_bar
        )
        closed = sorted(
            (t.ticket, t.close_time, t.close_price, t.profit, t.exit_reason)
            for t in trades
            if t.close_time is not None and t.close_time <= last_bar
        )
        return made, opened + closed
    finally:
        await app.shutdown("test")


async def test_the_bot_replays_the_same_trades_at_two_speeds(tmp_path: Path) -> None:
    clock = ServerClock.parse("NY+7")
    bars = generate_bars(700, seed=21)
    import polars as pl

    bars_file = tmp_path / "bars.parquet"
    bars.with_columns(
        pl.col("time").map_elements(clock.from_utc, return_dtype=pl.Datetime("us"))
    ).write_parquet(bars_file)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    slow = await replay(tmp_path / "a", bars_file, 3000, 40)
    fast = await replay(tmp_path / "b", bars_file, 9000, 40)
    assert slow[0] == fast[0]
    assert any(action == "enter" for _, action, _ in slow[0])
    assert slow[1] == fast[1]
