"""The journal cannot write (issue 20, item 2), injected where SQLite meets it (tests/journal_faults.py):
a read-only file (connections used during the fault stay read-only, as SQLite keeps them), a disk full
in the driver, and a real full filesystem (a tiny tmpfs, when this machine can mount one).

What must hold: no order without its committed decision row; one alarm (chat and log) per outage; the
closes of the outage booked with their real exit reason and P/L once the journal writes again, then
announced; the pool recovers without a restart; `/health` red for the journal and entries meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.journal_guard import HoldingBus, JournalGuard
from bot.journal_recorder import JournalRecorder
from bot.store import Journal
from bot.store.health import JournalWriteError
from handlers.clock import set_market_replay
from tests.engine_fixtures import NOW, FakeSetup, analysis
from tests.journal_faults import DiskFull, ReadOnlyFile, fill, tiny_tmpfs
from trading.broker.paper import PaperBroker
from trading.domain import Side, Tick
from trading.engine import TradingEngine
from trading.events import Event, EventKind
from trading.records import UNRECORDED_ENTRY

T0 = NOW


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Wall:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Analyzer:
    def __init__(self) -> None:
        self.next = analysis()

    def __call__(self, bars: object) -> Any:
        return self.next


class CheckedBroker(PaperBroker):
    """Each order looks in the database file (a separate read-only connection) for its committed
    decision row first: the newest decision must say `enter`."""

    db: Path
    orders: list[tuple[str, ...]]

    async def open_market(self, side: Side, volume: float, sl: float, tp: float, comment: str = "") -> Any:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT id, action FROM decisions ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            con.close()
        self.orders.append(row)
        return await super().open_market(side, volume, sl, tp, comment)


class Rig:
    def __init__(
        self,
        journal: Journal,
        engine: TradingEngine,
        broker: CheckedBroker,
        guard: JournalGuard,
        clock: Clock,
        wall: Wall,
        analyzer: Analyzer,
        events: list[Event],
    ) -> None:
        self.journal, self.engine, self.broker, self.guard = journal, engine, broker, guard
        self.clock, self.wall, self.analyzer, self.events = clock, wall, analyzer, events

    def of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind is kind]

    def price(self, bid: float, seconds: float = 1.0) -> None:
        self.clock.now += timedelta(seconds=seconds)
        self.broker.set_tick(Tick(self.clock.now, bid, round(bid + 0.2, 2)))

    async def bar(self, **setup: Any) -> Any:
        """One bar decided 15 minutes on (past the entry cooldown), at 3300."""
        self.clock.now += timedelta(minutes=15)
        self.price(3299.8, seconds=0)
        self.analyzer.next = analysis(
            setup=replace(FakeSetup(), **setup), bar_time=self.clock.now - timedelta(minutes=15)
        )
        return await self.engine.on_bar(None)  # type: ignore[arg-type]

    async def retry(self) -> None:
        self.wall.t += self.guard.retry_seconds
        await self.guard.maintain()


async def rig(db: Path) -> Rig:
    journal = await Journal(db).open()
    clock, wall = Clock(T0), Wall()
    broker = CheckedBroker(balance=10_000.0)
    broker.db, broker.orders = db, []
    await broker.connect()
    broker.set_tick(Tick(T0, 3299.8, 3300.0))
    bus = HoldingBus()
    events: list[Event] = []
    bus.on(events.append)
    guard = JournalGuard(JournalRecorder(journal), bus, clock=clock, wall=wall)
    analyzer = Analyzer()
    engine = TradingEngine(
        broker, analyzer, recorder=guard, bus=bus, clock=clock, market_clock=lambda now: (None, None)
    )
    await engine.start(None)
    return Rig(journal, engine, broker, guard, clock, wall, analyzer, events)


def journal_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.store.journal" and r.levelno >= logging.ERROR]


# ---------------------------------------------------------------- the journal itself


async def test_a_read_only_file_fails_writes_once_loudly_and_the_pool_recovers_without_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = await Journal(tmp_path / "j.db").open()
    try:
        fault = ReadOnlyFile(journal)
        fault.on = True
        failed = 0
        for _ in range(20):
            with pytest.raises(JournalWriteError, match="attempt to write a readonly database"):
                await journal.record_decision(T0, "skip")
            failed += 1
            await journal.decisions(limit=1)  # reads go on (and leave read-only connections in the pool)
        assert not journal.health.writable and journal.health.failed_writes == failed
        [error] = journal_errors(caplog)  # one ERROR line with its traceback for the whole outage
        assert error.exc_info is not None and str(journal.path) in error.getMessage()
        assert "readonly" in error.getMessage()
        fault.on = False
        outcomes = []
        for _ in range(20):
            try:
                await journal.record_decision(T0, "skip")
                outcomes.append(True)
            except JournalWriteError:
                outcomes.append(False)
        assert outcomes.count(False) <= 1 and all(
            outcomes[1:]
        )  # one stale connection at most, then it writes
        assert journal.health.writable
        assert len(journal_errors(caplog)) == 1
    finally:
        await journal.close()


async def test_a_real_full_filesystem_fails_writes_and_freeing_space_recovers(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "mnt", size_kb=1024) as mnt:
        journal = await Journal(mnt / "j.db").open()
        try:
            await journal.record_decision(T0, "skip")
            filler = fill(mnt)
            errors = []
            for _ in range(40):
                try:
                    await journal.record_decision(T0, "skip", reason="x" * 3000)
                except JournalWriteError as exc:
                    errors.append(exc.error)
            assert errors and all("full" in e or "I/O" in e for e in errors), errors
            assert not journal.health.writable
            filler.unlink()
            for _ in range(5):
                await journal.record_decision(T0, "skip")  # no restart, no exception
            assert journal.health.writable
        finally:
            await journal.close()


# ---------------------------------------------------------------- the engine over the guard


async def test_no_order_goes_out_without_its_committed_decision_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(tmp_path / "j.db")
    try:
        fault = DiskFull(r.journal)
        fault.on = True
        for _ in range(3):
            decision = await r.bar()
            assert decision.id is None and decision.action == "skip" and decision.reason == UNRECORDED_ENTRY
        assert r.broker.orders == [] and r.broker.positions_now() == []
        [alarm] = r.of(EventKind.JOURNAL)  # one alarm for the outage, not one per failure
        assert alarm.data["ok"] is False and "disk is full" in alarm.data["error"]
        assert str(r.journal.path) in alarm.text
        assert len(journal_errors(caplog)) == 1
        assert "cannot write" in r.journal.health.entries_blocked
        fault.on = False
        await r.retry()
        assert r.journal.health.writable and r.journal.health.entries_blocked == ""
        assert [e.data["ok"] for e in r.of(EventKind.JOURNAL)] == [False, True]
        kept = await r.journal.decisions()
        assert [d.action for d in kept] == ["skip"] * 3 and {d.reason for d in kept} == {UNRECORDED_ENTRY}
        decision = await r.bar()  # entries resume by themselves
        assert decision.action == "enter" and decision.id is not None
        assert r.broker.orders == [(decision.id, "enter")]  # the row was in the file before the order went
    finally:
        await r.journal.close()


async def test_closes_during_an_outage_are_booked_with_their_real_reason_then_announced(
    tmp_path: Path,
) -> None:
    r = await rig(tmp_path / "j.db")
    try:
        assert (await r.bar()).action == "enter"
        assert (await r.bar()).action == "enter"
        first, second = sorted(r.engine.positions)
        fault = ReadOnlyFile(r.journal)
        fault.on = True
        manual = await r.engine.close(first, by="alice")  # a person closes one
        assert manual is not None and manual.reason == "manual"
        r.price(3289.5)  # the other's stop (3290) is hit at the broker
        await r.engine.on_tick()
        assert r.engine.positions == {} and r.engine.state.daily_trades == 2  # the risk state counts both
        assert r.of(EventKind.TRADE_CLOSED) == []  # nothing announced before it is booked
        assert [e.data["ok"] for e in r.of(EventKind.JOURNAL)] == [False]
        assert sorted(t.ticket for t in await r.journal.open_trades()) == [first, second]  # not booked yet
        assert len(r.journal.health.held) == 2 and "broker_sl" in " ".join(r.journal.health.held)
        await r.retry()  # still read-only: nothing changes, no second alarm
        assert len(r.of(EventKind.JOURNAL)) == 1 and r.of(EventKind.TRADE_CLOSED) == []
        fault.on = False
        await r.retry()  # the pool holds read-only connections: the probe recycles it and books
        rows = {t.ticket: t for t in await r.journal.closed_trades()}
        assert rows[first].exit_reason == "manual" and rows[first].profit == manual.profit
        assert rows[second].exit_reason == "broker_sl" and rows[second].close_price <= 3290.0
        kinds = [e.kind for e in r.events if e.kind in (EventKind.JOURNAL, EventKind.TRADE_CLOSED)]
        assert kinds == [EventKind.JOURNAL, EventKind.JOURNAL, EventKind.TRADE_CLOSED, EventKind.TRADE_CLOSED]
        recovery = r.of(EventKind.JOURNAL)[1]
        assert recovery.data["ok"] is True and len(recovery.data["booked"]) == 2
        assert [e.data["trade"].ticket for e in r.of(EventKind.TRADE_CLOSED)] == [first, second]
        assert r.journal.health.held == () and r.journal.health.writable
        saved = (await r.journal.load_state())["engine"]
        assert saved["positions"] == [] and saved["risk"]["daily_trades"] == 2
    finally:
        await r.journal.close()


async def test_a_close_on_a_really_full_disk_is_booked_once_space_is_freed(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "mnt", size_kb=1024) as mnt:
        r = await rig(mnt / "j.db")
        try:
            assert (await r.bar()).action == "enter"
            [ticket] = r.engine.positions
            filler = fill(mnt)
            r.price(3320.5)  # take-profit at the broker
            await r.engine.on_tick()
            assert r.of(EventKind.TRADE_CLOSED) == [] and [e.data["ok"] for e in r.of(EventKind.JOURNAL)] == [
                False
            ]
            # a full disk may still take a write that fits in space SQLite already holds: whatever it took,
            # an order only ever went out with its committed `enter` row
            decision = await r.bar()
            assert all(action == "enter" for _, action in r.broker.orders)
            assert len(r.broker.orders) == 1 + (decision.id is not None)
            filler.unlink()
            await r.retry()
            closed = [t for t in await r.journal.closed_trades() if t.ticket == ticket]
            assert [t.exit_reason for t in closed] == ["broker_tp"]
            kinds = [
                (e.kind, e.data.get("ok"))
                for e in r.events
                if e.kind in (EventKind.JOURNAL, EventKind.TRADE_CLOSED)
            ]
            assert kinds == [
                (EventKind.JOURNAL, False),
                (EventKind.JOURNAL, True),
                (EventKind.TRADE_CLOSED, None),
            ]
            assert r.journal.health.writable and r.journal.health.held == ()
        finally:
            await r.journal.close()


# ---------------------------------------------------------------- the whole bot, through its console


async def test_the_bot_alarms_once_shows_red_health_and_recovers_by_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os

    from bot.app import App
    from bot.config import load_settings

    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "BROKER", "RISK_", "PAPER_", "DATABASE_PATH", "MODELS_DIR")):
            monkeypatch.delenv(name)
    settings = load_settings(
        None,
        database_path=tmp_path / "x.db",
        models_dir=tmp_path / "models",
        paper_replay_speed=3000,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
    )
    app = App(settings, console_input=False)
    await app.start()
    app.scheduler.pause()
    assert app.console is not None
    try:
        app.guard.retry_seconds = 3600.0  # the test says when to retry
        before = len(await app.journal.decisions(limit=1000))
        fault = ReadOnlyFile(app.journal)
        fault.on = True
        deadline = asyncio.get_running_loop().time() + 30
        while len(app.guard._held) < 3 and asyncio.get_running_loop().time() < deadline:  # three bars decided
            await app.trading_job.run()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # the notifier prints
        assert capsys.readouterr().out.count("JOURNAL CANNOT WRITE") == 1  # one alarm, three failed bars
        await app.console.handle_line("/health")
        health = capsys.readouterr().out
        assert "⚠️ Journal: NOT writable" in health and "readonly" in health
        assert "⚠️ Entries: blocked: the journal cannot write" in health
        assert app.errors.total == 0  # a journal outage is not an error burst of the loop
        fault.on = False
        assert await app.guard.flush_now() == []  # the retry the guard's loop makes every retry_seconds
        await asyncio.sleep(0.2)
        await app.console.handle_line("/health")
        out = capsys.readouterr().out
        assert "✅ Journal: ok" in out and "✅ Entries: allowed" in out
        assert "JOURNAL WRITES AGAIN" in out
        assert len(await app.journal.decisions(limit=1000)) >= before + 3  # the outage's decisions, booked
        assert "JOURNAL CANNOT WRITE" not in out
    finally:
        await app.shutdown("test")
        set_market_replay(None)  # the app labelled the clock lines of its replay; later tests expect none


def test_an_outage_logs_one_traceback_then_one_short_line_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    from bot.store.health import JournalHealth

    wall = Wall()
    health = JournalHealth("data/x.db", clock=Clock(T0), wall=wall)
    told: list[bool] = []
    health.listeners.append(lambda _h, started: told.append(started))
    error = sqlite3.OperationalError("database or disk is full")
    with caplog.at_level(logging.WARNING, logger="bot.store.journal"):
        for second in range(150):
            wall.t = 1000.0 + second
            health.failed(error, str(error))
        health.succeeded()
    lines = [(r.levelname, r.exc_info is not None) for r in caplog.records if r.name == "bot.store.journal"]
    assert lines == [("ERROR", True), ("WARNING", False), ("WARNING", False), ("WARNING", False)]
    assert "60 more failed write(s)" in caplog.records[1].getMessage()
    assert "writes again" in caplog.records[-1].getMessage()
    assert told == [True, False] and health.writable and health.entries_blocked == ""
