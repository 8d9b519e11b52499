"""A skip decision's journal row is written aside: the entry step does not wait for it, the rows land
one at a time in bar order, an entry waits for them before its own row (and its order), a journal
outage during such a write is held and booked as any other record, and shutdown waits for them."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.store import Journal
from tests.engine_fixtures import analysis
from tests.journal_faults import DiskFull
from tests.test_app import make_settings, started
from tests.test_journal_faults import Rig, rig
from trading.events import EventKind
from trading.records import Decision


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)


def gate_writes(journal: Journal) -> tuple[asyncio.Event, list[Any]]:
    """Every decision write waits for the returned event; the list gets each write's bar time as it starts."""
    opened, started_writes = asyncio.Event(), []
    real = journal.record_decision

    async def gated(bar_time: Any, *args: Any, **kwargs: Any) -> int:
        started_writes.append(bar_time)
        await opened.wait()
        return await real(bar_time, *args, **kwargs)

    journal.record_decision = gated  # type: ignore[method-assign]
    return opened, started_writes


async def skip_bar(r: Rig) -> Decision:
    """One bar with no setup: a skip."""
    r.clock.now += timedelta(minutes=15)
    r.price(3299.8, seconds=0)
    r.analyzer.next = analysis(setup=None, bar_time=r.clock.now - timedelta(minutes=15))
    decision: Decision = await r.engine.on_bar(None)  # type: ignore[arg-type]
    return decision


def rows(db: Path) -> list[tuple[int, str, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, bar_time, action FROM decisions ORDER BY id").fetchall()
    finally:
        con.close()


async def test_skips_return_at_once_and_their_rows_land_in_bar_order(tmp_path: Path) -> None:
    r = await rig(tmp_path / "j.db")
    try:
        opened, writes = gate_writes(r.journal)
        skips = [await asyncio.wait_for(skip_bar(r), 5) for _ in range(3)]  # the engine awaits no row
        assert all(d.action == "skip" and d.id is None for d in skips)
        assert r.engine.last_decision is skips[-1]
        await asyncio.sleep(0.05)
        assert len(writes) == 1 and rows(tmp_path / "j.db") == []  # one write at a time, none committed
        opened.set()
        assert await r.guard.drain()
        stored = rows(tmp_path / "j.db")
        assert [a for _, _, a in stored] == ["skip"] * 3
        assert writes == [d.bar_time for d in skips]  # written in bar order, ids ascending
        last = r.engine.last_decision
        assert last is not None and last.bar_time == skips[-1].bar_time  # an older row did not overwrite it
        assert last.id == stored[-1][0]  # the id arrived when the row landed
    finally:
        await r.journal.close()


async def test_an_entry_waits_for_the_pending_skips_before_its_row_and_order(tmp_path: Path) -> None:
    r = await rig(tmp_path / "j.db")
    try:
        opened, writes = gate_writes(r.journal)
        await skip_bar(r)
        await skip_bar(r)
        entering = asyncio.ensure_future(r.bar())
        await asyncio.sleep(0.05)
        assert not entering.done() and r.broker.orders == []  # held behind the skips' rows
        opened.set()
        decision = await asyncio.wait_for(entering, 10)
        assert decision.action == "enter" and decision.id is not None
        stored = rows(tmp_path / "j.db")
        assert [a for _, _, a in stored] == ["skip", "skip", "enter"] and stored[-1][0] == decision.id
        assert r.broker.orders == [(decision.id, "enter")]  # its committed row was the newest
        assert len(writes) == 3
    finally:
        await r.journal.close()


async def test_a_skip_written_during_an_outage_is_held_alarmed_and_booked_on_recovery(tmp_path: Path) -> None:
    r = await rig(tmp_path / "j.db")
    try:
        fault = DiskFull(r.journal)
        fault.on = True
        skip = await skip_bar(r)
        assert await r.guard.drain()
        assert r.guard.holding and r.engine.last_decision is skip and skip.id is None
        [alarm] = r.of(EventKind.JOURNAL)
        assert alarm.data["ok"] is False and "disk is full" in alarm.data["error"]
        refused = await r.bar()  # an entry in the outage: still no order without its row
        assert refused.id is None and refused.action == "skip" and r.broker.orders == []
        fault.on = False
        await r.retry()
        assert not r.guard.holding
        assert [e.data["ok"] for e in r.of(EventKind.JOURNAL)] == [False, True]
        stored = rows(tmp_path / "j.db")
        assert len(stored) == 2 and [b for _, b, _ in stored] == sorted(b for _, b, _ in stored)
    finally:
        await r.journal.close()


async def test_shutdown_waits_for_the_skip_rows_still_being_written(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = await started(settings)
    try:
        real = app.journal.record_decision
        written: list[Any] = []

        async def slow(*args: Any, **kwargs: Any) -> int:
            await asyncio.sleep(0.3)
            ident = await real(*args, **kwargs)
            written.append(ident)
            return ident

        app.journal.record_decision = slow  # type: ignore[method-assign]
        deadline = asyncio.get_running_loop().time() + 30
        while app.engine.last_decision is None or app.engine.last_decision.reason.startswith("start-up"):
            assert asyncio.get_running_loop().time() < deadline
            await app.trading_job.run()
            await asyncio.sleep(0.01)
        assert app.engine.last_decision.action == "skip" and written == []  # decided, row not yet in
    finally:
        await app.shutdown("test")
    assert len(written) >= 1
    assert len(rows(Path(settings.database_path))) == len(written)
