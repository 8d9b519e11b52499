"""The controller's typed seams: one context for Telegram and the console, what handlers keep between
updates (handlers/memory.py), and the courier's outage bookkeeping (bot/outage.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import Settings, load_settings
from bot.outage import Outage
from bot.retry import Backoff
from bot.transport import SendResult
from handlers.memory import PagedList, PagedLists


@pytest.fixture(autouse=True)
def no_telegram_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)


def console_settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        database_path=tmp_path / "x.db",
        models_dir=tmp_path / "models",
        paper_replay_speed=3000,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
    )


async def test_the_console_works_on_the_apps_own_context(tmp_path: Path, capsys: Any) -> None:
    app = App(console_settings(tmp_path), console_input=False)
    await app.start()
    try:
        assert app.scheduler is not None
        app.scheduler.pause()
        assert app.console is not None and app.ctx.notify is not None
        assert app.console.dp["ctx"] is app.ctx  # one context: what a command sets, the app sees
        capsys.readouterr()
        await app.console.handle_line("/notify market off")
        assert "Market updates" in capsys.readouterr().out
        assert app.notifier.switch("market_update") == "off"
        assert (await app.journal.load_state())["notify_switches"]["market_update"] == "off"
        # the console user is let in although TELEGRAM_ALLOWED_USERS is empty; the settings are untouched
        assert app.settings.telegram_allowed_users == []
    finally:
        await app.shutdown("test")


def test_paged_lists_keep_the_newest_and_a_turned_list_goes_last() -> None:
    kept = PagedLists()
    for i in range(4):
        kept.add((1, i), PagedList([f"page of {i}"], 0), keep=3)
    assert kept.get((1, 0)) is None and len(kept) == 3  # the oldest went
    kept.touch((1, 1))  # a page of list 1 was turned
    kept.add((1, 9), PagedList(["new"], 0), keep=3)
    assert kept.get((1, 2)) is None  # the least recently used went, not the turned one
    assert kept.get((1, 1)) is not None and kept.get((1, 9)) is not None
    kept.touch((5, 5))  # a list no longer kept: nothing happens
    kept.clear()
    assert len(kept) == 0


async def test_an_outage_counts_its_tries_once_and_a_nudge_ends_the_wait() -> None:
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        await asyncio.sleep(3600)  # only a nudge ends it

    outage = Outage(Backoff(first=2.0, cap=5.0), sleep=sleep)
    down = SendResult(retry=True, error="connection refused")
    first = asyncio.create_task(outage.wait_out(down, waiting=3))
    await asyncio.sleep(0.01)
    outage.nudge()
    assert await asyncio.wait_for(first, 1.0) is True  # this failure began the outage
    second = asyncio.create_task(outage.wait_out(down, waiting=3))
    await asyncio.sleep(0.01)
    outage.nudge()
    assert await asyncio.wait_for(second, 1.0) is False
    assert (outage.tries, outage.count, naps) == (2, 1, [2.0, 4.0])
    outage.recovered(waiting=0)
    assert outage.tries == 0 and outage.down_since is None
    outage.nudge()  # nothing to cut short: no error
