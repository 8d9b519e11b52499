"""Shutdown never cuts a journal write in half: the journal guard's task, cancelled while it probes,
lets the write commit; closing the journal waits for another task's write before the pool goes; and
whole App start/stop cycles log no ERROR and leave no task behind."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App
from bot.config import load_settings
from bot.journal_guard import PROBE_KEY, JournalGuard
from bot.journal_recorder import JournalRecorder
from bot.store import Journal


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)


def slow_writes(journal: Journal, seconds: float) -> None:
    """Every save_state holds its transaction (and pooled connection) open for `seconds`."""
    original = journal.save_state

    async def save_state(state):  # type: ignore[no-untyped-def]
        async with journal._write():
            await asyncio.sleep(seconds)
        await original(state)

    journal.save_state = save_state  # type: ignore[method-assign]


async def test_cancelling_the_guard_mid_probe_lets_the_probe_commit(tmp_path: Path) -> None:
    journal = await Journal(tmp_path / "j.db").open()
    guard = JournalGuard(JournalRecorder(journal, "XAUUSD"), retry_seconds=0.01)
    journal.health.failing_since = datetime.now(UTC)  # a failed journal: the guard probes it
    slow_writes(journal, 0.2)
    task = asyncio.create_task(guard.run())
    await asyncio.sleep(0.1)  # inside the probe's transaction
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert PROBE_KEY in await journal.load_state()  # committed, not cut off
    await journal.close()


async def test_closing_the_journal_waits_for_a_write_in_progress(tmp_path: Path) -> None:
    journal = await Journal(tmp_path / "j.db").open()
    slow_writes(journal, 0.2)
    write = asyncio.create_task(journal.save_state({"k": 1}))
    await asyncio.sleep(0.05)
    await journal.close()
    await write  # no error: the pool was disposed after the write committed
    again = await Journal(tmp_path / "j.db").open()
    assert (await again.load_state())["k"] == 1
    await again.close()


async def test_start_stop_cycles_log_no_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for i, seconds in enumerate((0.6, 1.3, 2.1)):
        s = load_settings(
            None,
            database_path=tmp_path / f"{i}.db",
            models_dir=tmp_path / "models",
            paper_replay_speed=3000,
            auto_retrain=False,
        )
        assert await App(s, console_input=False).run(seconds) == 0
        left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert left == []
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [(r.name, r.getMessage()) for r in bad]
