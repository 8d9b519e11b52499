"""Journal round trips, WAL, restart, idempotent writes, CSV export, approvals and concurrency."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import DailySummary, GateResult, Journal
from bot.store.journal import JournalClosedError, wib_day_bounds
from bot.store.records import TRADE_CSV_COLUMNS
from trading.domain import ClosedTrade, Position, Side
from trading.risk.approvals import Approval, ApprovalRegistry, ApprovalStatus, RiskChange
from trading.risk.modes import RiskMode, RiskState

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 WIB, Monday 2 March 2026


def pos(ticket: int = 101, side: Side = Side.BUY, *, price: float = 2650.0, at: datetime = T0) -> Position:
    sl = price - 5 if side is Side.BUY else price + 5
    tp = price + 10 if side is Side.BUY else price - 10
    return Position(
        ticket=ticket, symbol="XAUUSD", side=side, volume=0.02, open_price=price, open_time=at,
        sl=sl, tp=tp, magic=20260302, comment="xaubot",
    )  # fmt: skip


def closed(p: Position, close_price: float, profit: float, *, after: timedelta = timedelta(hours=1),
           reason: str = "take_profit", **extra: object) -> ClosedTrade:  # fmt: skip
    return ClosedTrade(
        ticket=p.ticket, symbol=p.symbol, side=p.side, volume=p.volume, open_price=p.open_price,
        close_price=close_price, open_time=p.open_time, close_time=p.open_time + after, profit=profit,
        reason=reason, sl=p.sl, tp=p.tp, extra=dict(extra),
    )  # fmt: skip


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal(tmp_path / "data" / "journal.db").open()
    yield j
    await j.close()


# --- setup ----------------------------------------------------------------------------------------


async def test_wal_synchronous_and_foreign_keys_on(journal: Journal) -> None:
    assert await journal.sqlite_settings() == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": True}
    with sqlite3.connect(journal.path) as raw:  # WAL is a property of the file, seen by any reader
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_use_before_open_and_after_close_is_a_clear_error(tmp_path: Path) -> None:
    j = Journal(tmp_path / "x.db")
    with pytest.raises(JournalClosedError, match="not open"):
        await j.open_trades()
    await j.open()
    await j.close()
    with pytest.raises(JournalClosedError):
        await j.load_state()


def test_rejects_memory_database_and_bad_pip() -> None:
    with pytest.raises(ValueError, match="file path"):
        Journal(":memory:")
    with pytest.raises(ValueError, match="pip_size"):
        Journal("x.db", pip_size=0)


# --- decisions ------------------------------------------------------------------------------------


async def test_decision_round_trip_keeps_gate_order(journal: Journal) -> None:
    gates = [
        GateResult("session", True, "London"),
        {"name": "spread", "passed": True, "reason": "0.25 <= 0.50"},
        GateResult("confidence", False, "0.58 < 0.65"),
        GateResult("max_positions", True),
    ]
    did = await journal.record_decision(
        T0, "skip", side=Side.SELL, p_up=0.42, regime="trending", confidence=0.58, threshold=0.65,
        reason="bearish BOS + FVG", gates=gates, lot=0.02, now=T0 + timedelta(seconds=3),
    )  # fmt: skip
    d = await journal.decision(did)
    assert d is not None
    assert (d.id, d.bar_time, d.action, d.side, d.p_up, d.regime) == (
        did,
        T0,
        "skip",
        Side.SELL,
        0.42,
        "trending",
    )
    assert (d.confidence, d.threshold, d.reason, d.lot) == (0.58, 0.65, "bearish BOS + FVG", 0.02)
    assert [g.name for g in d.gates] == ["session", "spread", "confidence", "max_positions"]
    assert d.gates[1] == GateResult("spread", True, "0.25 <= 0.50")
    assert d.first_failed_gate == GateResult("confidence", False, "0.58 < 0.65")
    assert d.created_at == T0 + timedelta(seconds=3)
    assert await journal.decision(did + 99) is None


async def test_a_skipped_gate_survives_the_round_trip_through_the_recorder(journal: Journal) -> None:
    """The engine's GateResult is the journal's: skipped stays skipped (neither passed nor blocking),
    and a row written before the flag (passed, reason "skipped: ...") reads back as skipped too."""
    from bot.journal_recorder import JournalRecorder
    from trading.gates import GateResult as EngineGate
    from trading.records import Decision

    assert GateResult is EngineGate
    gates = (
        GateResult("session", True, "London"),
        GateResult("ml_confidence", False, "no model", skipped=True),
        GateResult("spread", False, "72 > 60 points"),
    )
    decision = Decision(
        bar_time=T0,
        action="skip",
        side=None,
        reason="spread: 72 > 60 points",
        gates=gates,
        regime="low",
        p_up=None,
        threshold=0.6,
    )
    did = await JournalRecorder(journal).record_decision(decision)
    assert did is not None
    d = await journal.decision(did)
    assert d is not None and d.gates == gates
    assert [g.blocked for g in d.gates] == [False, False, True]
    assert d.first_failed_gate == gates[2]
    old = await journal.record_decision(
        T0 + timedelta(minutes=15),
        "skip",
        gates=[{"name": "ml_confidence", "passed": True, "reason": "skipped: no model"}],
    )
    back = await journal.decision(old)
    assert back is not None and back.gates == (GateResult("ml_confidence", False, "no model", skipped=True),)


async def test_decisions_newest_first_with_since_and_limit(journal: Journal) -> None:
    for i in range(5):
        await journal.record_decision(T0 + timedelta(minutes=15 * i), "hold")
    got = await journal.decisions(since=T0 + timedelta(minutes=15), limit=3)
    assert [d.bar_time for d in got] == [T0 + timedelta(minutes=m) for m in (60, 45, 30)]


async def test_bad_decision_input_writes_nothing(journal: Journal) -> None:
    with pytest.raises(ValueError, match="gate #1"):
        await journal.record_decision(T0, "enter", gates=[GateResult("a", True), ("b", True)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="naive datetime"):
        await journal.record_decision(datetime(2026, 3, 2, 2, 0), "enter")
    with pytest.raises(ValueError, match="action"):
        await journal.record_decision(T0, "")
    assert await journal.decisions() == []


# --- trades ---------------------------------------------------------------------------------------


async def test_trade_lifecycle_open_move_close(journal: Journal) -> None:
    did = await journal.record_decision(T0, "enter", side=Side.BUY)
    p = pos()
    assert await journal.record_trade_open(p, decision_id=did) is True

    [open_row] = await journal.open_trades()
    assert (open_row.ticket, open_row.side, open_row.volume, open_row.open_price) == (
        101,
        Side.BUY,
        0.02,
        2650.0,
    )
    assert (open_row.sl, open_row.tp, open_row.status, open_row.decision_id) == (2645.0, 2660.0, "open", did)
    assert (open_row.magic, open_row.comment, open_row.open_time) == (20260302, "xaubot", T0)
    assert open_row.close_time is None and open_row.profit is None and open_row.is_open

    moved = T0 + timedelta(minutes=20)
    assert await journal.record_trade_update_sl_tp(101, 2650.0, 2660.0, reason="breakeven", when=moved)
    assert not await journal.record_trade_update_sl_tp(101, 2650.0, 2660.0, reason="same again")  # no change

    # BUY 2650 -> 2657.5: +7.5 price = 75 pips; net 14.2 after 0.6 commission and 0.2 swap
    ct = closed(p, 2657.5, 14.2, reason="trailing_stop", commission=-0.6, swap=-0.2, atr=3.1)
    assert await journal.record_trade_close(ct) is True
    row = await journal.trade_by_ticket(101)
    assert row is not None and row.status == "closed" and not row.is_open
    assert (row.close_price, row.profit, row.exit_reason) == (2657.5, 14.2, "trailing_stop")
    assert (row.commission, row.swap, row.pips) == (-0.6, -0.2, 75.0)
    assert row.close_time == T0 + timedelta(hours=1)
    assert row.sl == 2650.0  # the moved stop, not the opening one
    assert row.extra == {"commission": -0.6, "swap": -0.2, "atr": 3.1}
    assert await journal.open_trades() == []

    history = await journal.sl_tp_history(101)
    assert [(h.time, h.sl, h.tp, h.reason) for h in history] == [
        (T0, 2645.0, 2660.0, "open"),
        (moved, 2650.0, 2660.0, "breakeven"),
    ]
    assert not await journal.record_trade_update_sl_tp(101, 2655.0, 2660.0)  # closed: nothing moves
    back = row.to_closed_trade()
    assert (back.ticket, back.profit, back.reason, back.close_price) == (101, 14.2, "trailing_stop", 2657.5)


async def test_sell_pips_are_signed_in_the_trades_favour(journal: Journal) -> None:
    p = pos(7, Side.SELL, price=2600.0)
    await journal.record_trade_open(p)
    await journal.record_trade_close(closed(p, 2603.0, -6.0, reason="stop_loss"))
    row = await journal.trade_by_ticket(7)
    assert row is not None and row.pips == pytest.approx(-30.0)


async def test_close_is_idempotent_and_the_first_close_stays(journal: Journal) -> None:
    p = pos()
    await journal.record_trade_open(p)
    assert await journal.record_trade_close(closed(p, 2655.0, 10.0)) is True
    assert await journal.record_trade_close(closed(p, 2640.0, -20.0, reason="other")) is False
    row = await journal.trade_by_ticket(101)
    assert row is not None and (row.profit, row.close_price, row.exit_reason) == (10.0, 2655.0, "take_profit")
    assert len(await journal.trades()) == 1


async def test_open_twice_does_nothing_the_second_time(journal: Journal) -> None:
    assert await journal.record_trade_open(pos()) is True
    assert await journal.record_trade_open(pos(price=1.0 + 2650)) is False
    [row] = await journal.trades()
    assert row.open_price == 2650.0
    assert len(await journal.sl_tp_history(101)) == 1


async def test_close_of_a_trade_opened_while_down_inserts_a_full_row(journal: Journal) -> None:
    p = pos(555, Side.SELL)
    assert await journal.record_trade_close(closed(p, 2640.0, 19.4), magic=9, comment="adopted") is True
    row = await journal.trade_by_ticket(555)
    assert row is not None
    assert (row.status, row.side, row.open_price, row.close_price, row.profit) == (
        "closed",
        Side.SELL,
        2650.0,
        2640.0,
        19.4,
    )
    assert (row.magic, row.comment, row.decision_id, row.pips) == (9, "adopted", None, 100.0)
    assert await journal.record_trade_close(closed(p, 2640.0, 19.4)) is False


async def test_trade_input_errors_name_the_problem_and_write_nothing(journal: Journal) -> None:
    with pytest.raises(ValueError, match="decision 42 is not in the journal"):
        await journal.record_trade_open(pos(), decision_id=42)
    with pytest.raises(ValueError, match="volume must be > 0"):
        await journal.record_trade_open(Position(1, "XAUUSD", Side.BUY, 0.0, 2650.0, T0))
    with pytest.raises(ValueError, match="open_price must be a finite"):
        await journal.record_trade_open(Position(1, "XAUUSD", Side.BUY, 0.01, float("nan"), T0))
    with pytest.raises(ValueError, match="naive datetime"):
        await journal.record_trade_open(pos(at=datetime(2026, 3, 2, 2, 0)))
    bad_times = ClosedTrade(
        1, "XAUUSD", Side.BUY, 0.01, 2650.0, 2651.0, T0, T0 - timedelta(seconds=1), 1.0, "x"
    )
    with pytest.raises(ValueError, match="before open time"):
        await journal.record_trade_close(bad_times)
    with pytest.raises(KeyError, match="999"):
        await journal.record_trade_update_sl_tp(999, 1.0, 2.0)
    assert await journal.trades() == []


async def test_odd_extras_are_stored_leniently_rather_than_losing_the_close(journal: Journal) -> None:
    p = pos()
    await journal.record_trade_open(p)
    ok = await journal.record_trade_close(
        closed(p, 2651.0, 1.0, when=T0, score=float("nan"), side=Side.SELL, tags=("a", 1), obj=object)
    )
    assert ok is True
    row = await journal.trade_by_ticket(p.ticket)
    assert row is not None
    assert row.extra["when"] == "2026-03-02T02:00:00+00:00"
    assert (row.extra["score"], row.extra["side"], row.extra["tags"]) == (None, "SELL", ["a", 1])
    assert row.extra["obj"] == "<class 'object'>"


async def test_trade_queries_order_since_and_limit(journal: Journal) -> None:
    for i in range(4):
        p = pos(200 + i, at=T0 + timedelta(hours=i))
        await journal.record_trade_open(p)
        if i < 3:  # closes in reverse order: 202 first, then 201, then 200
            await journal.record_trade_close(closed(p, 2651.0, float(i), after=timedelta(hours=10 - 3 * i)))
    assert [t.ticket for t in await journal.trades()] == [203, 202, 201, 200]
    assert [t.ticket for t in await journal.trades(since=T0 + timedelta(hours=2))] == [203, 202]
    assert [t.ticket for t in await journal.trades(limit=1)] == [203]
    assert [t.ticket for t in await journal.closed_trades()] == [200, 201, 202]
    assert [t.ticket for t in await journal.closed_trades(since=T0 + timedelta(hours=7))] == [200, 201]
    assert [t.ticket for t in await journal.open_trades()] == [203]
    assert await journal.trade_by_ticket(12345) is None


# --- day stats and CSV ----------------------------------------------------------------------------


def test_wib_day_bounds_are_utc_17_00_to_17_00() -> None:
    start, end = wib_day_bounds(date(2026, 3, 2))
    assert start == datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


async def test_stats_for_day_counts_by_wib_close_day(journal: Journal) -> None:
    # close times in UTC: 16:59 (2 Mar WIB 23:59) counts for 2 Mar; 17:00 (3 Mar 00:00 WIB) does not
    opens = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)  # 2 Mar 01:00 WIB
    cases = [(1, 16 * 60 + 59 - 18 * 60 + 24 * 60, 12.5), (2, 60, -4.0), (3, 120, 0.0), (4, 23 * 60, 99.0)]
    for ticket, minutes, profit in cases:
        p = pos(ticket, at=opens)
        await journal.record_trade_open(p)
        await journal.record_trade_close(closed(p, 2650.0, profit, after=timedelta(minutes=minutes)))
    await journal.record_trade_open(pos(5, at=opens))  # still open: not counted
    s = await journal.stats_for_day(date(2026, 3, 2))
    assert (s.trades, s.wins, s.losses, s.profit) == (3, 1, 1, pytest.approx(8.5))
    nxt = await journal.stats_for_day(date(2026, 3, 3))
    assert (nxt.trades, nxt.wins, nxt.profit) == (1, 1, 99.0)
    empty = await journal.stats_for_day(date(2026, 1, 1))
    assert (empty.trades, empty.wins, empty.losses, empty.profit) == (0, 0, 0, 0.0)


async def test_export_trades_csv_text_and_file(journal: Journal, tmp_path: Path) -> None:
    a, b = pos(1), pos(2, Side.SELL, at=T0 + timedelta(minutes=30))
    await journal.record_trade_open(a)
    await journal.record_trade_open(b)
    await journal.record_trade_close(closed(a, 2655.0, 10.0, reason="tp, hit"))
    target = tmp_path / "out" / "trades.csv"
    text = await journal.export_trades_csv(target)
    assert target.read_text(encoding="utf-8") == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == TRADE_CSV_COLUMNS
    assert [r["ticket"] for r in rows] == ["1", "2"]  # oldest first
    assert rows[0]["side"] == "BUY" and rows[0]["exit_reason"] == "tp, hit" and rows[0]["profit"] == "10.0"
    assert rows[0]["open_time"] == "2026-03-02T02:00:00+00:00"
    assert rows[1]["status"] == "open" and rows[1]["close_time"] == "" and rows[1]["profit"] == ""
    assert not list(target.parent.glob("*.tmp"))


async def test_export_of_an_empty_journal_is_just_the_header(journal: Journal) -> None:
    assert await journal.export_trades_csv() == ",".join(TRADE_CSV_COLUMNS) + "\n"


# --- equity, state, paper account -----------------------------------------------------------------


async def test_equity_snapshots_oldest_first_and_floating(journal: Journal) -> None:
    for i in range(4):
        await journal.record_equity(T0 + timedelta(minutes=i), 1000.0 + i, 1002.0 + i, open_positions=1)
    await journal.record_equity(T0 + timedelta(minutes=9), 1000.0, 1000.0, 0, floating=0.5)
    snaps = await journal.equity_snapshots(limit=3)
    assert [s.time.minute for s in snaps] == [2, 3, 9]
    assert (snaps[0].balance, snaps[0].equity, snaps[0].floating, snaps[0].open_positions) == (
        1002.0,
        1004.0,
        2.0,
        1,
    )
    assert snaps[-1].floating == 0.5
    assert len(await journal.equity_snapshots(since=T0 + timedelta(minutes=1))) == 4
    with pytest.raises(ValueError, match="open_positions"):
        await journal.record_equity(T0, 1.0, 1.0, -1)


async def test_state_merges_keys_and_bad_values_write_nothing(journal: Journal) -> None:
    assert await journal.load_state() == {}
    await journal.save_state({"paused": True, "risk_mode": "NORMAL", "counters": {"loops": 3}})
    await journal.save_state({"paused": False})
    assert await journal.load_state() == {"paused": False, "risk_mode": "NORMAL", "counters": {"loops": 3}}
    with pytest.raises(ValueError, match=r"state\['when'\] is not JSON"):
        await journal.save_state({"risk_mode": "STOPPED", "when": T0})
    with pytest.raises(ValueError, match="state key"):
        await journal.save_state({"": 1})
    assert (await journal.load_state())["risk_mode"] == "NORMAL"


async def test_risk_state_round_trip(journal: Journal) -> None:
    assert await journal.load_risk_state() is None
    state = RiskState(
        day=date(2026, 3, 2), day_start_balance=1000.0, reference_balance=1100.0, daily_realized=-12.5,
        daily_trades=3, daily_wins=1, consecutive_losses=2, cooldown_until=T0 + timedelta(hours=1),
        cooldown_reason="flash crash", daily_stop=True, stop_override_day=date(2026, 3, 2),
        manual_floor=RiskMode.PROTECTED, last_entry_time=T0,
    )  # fmt: skip
    await journal.save_risk_state(state)
    assert await journal.load_risk_state() == state
    fresh = RiskState.fresh(500.0, T0)
    await journal.save_risk_state(fresh)
    assert await journal.load_risk_state() == fresh


async def test_paper_state_round_trip(journal: Journal) -> None:
    assert await journal.load_paper_state() is None
    blob = {"balance": 1000.0, "positions": [{"ticket": 1, "side": "BUY"}], "next_ticket": 2}
    await journal.save_paper_state(blob)
    blob2 = {**blob, "balance": 990.0}
    await journal.save_paper_state(blob2)
    assert await journal.load_paper_state() == blob2


# --- approvals ------------------------------------------------------------------------------------


def _approval(kind: str = "mode", *, at: datetime = T0, ttl_min: int = 10) -> Approval:
    reg = ApprovalRegistry(ttl=timedelta(minutes=ttl_min))
    return reg.create(RiskChange(kind, f"set {kind}", {"to": "NORMAL", "n": 1}), "111", "recovered", at)


async def test_approvals_save_pending_resolve(journal: Journal) -> None:
    a = _approval("mode")
    b = _approval("limits", at=T0 + timedelta(minutes=1))
    short = _approval("reset_total", ttl_min=1)
    for x in (a, b, short):
        assert await journal.save_approval(x) is True
    assert await journal.save_approval(a) is False

    now = T0 + timedelta(minutes=2)  # `short` has expired by now
    assert [p.id for p in await journal.pending_approvals(now)] == [a.id, b.id]
    got = await journal.approval(a.id)
    assert got == a  # full round trip of the domain record

    reg = ApprovalRegistry()
    reg.restore(await journal.pending_approvals(now))
    answered = reg.resolve(a.id, True, "222", now)
    assert await journal.update_approval(answered) is True
    assert (
        await journal.update_approval(replace(answered, status=ApprovalStatus.REJECTED, resolved_by="333"))
        is False
    )
    stored = await journal.approval(a.id)
    assert stored is not None
    assert (stored.status, stored.resolved_by, stored.resolved_at) == (ApprovalStatus.APPROVED, "222", now)
    assert [p.id for p in await journal.pending_approvals(now)] == [b.id]
    with pytest.raises(KeyError):
        await journal.update_approval(replace(answered, id="nope"))


# --- models, audit, summaries ---------------------------------------------------------------------


async def test_model_versions_register_and_activate_one_per_kind(journal: Journal) -> None:
    assert await journal.record_model_version("xgb-1", "xgb", {"auc": 0.61}, path="models/xgb-1.json", now=T0)
    assert await journal.record_model_version("xgb-2", "xgb", {"auc": 0.64}, now=T0 + timedelta(days=1))
    assert await journal.record_model_version("hmm-1", "hmm", {"ll": -1234.5}, now=T0)
    assert not await journal.record_model_version("xgb-1", "xgb", {"auc": 0.0})
    assert await journal.active_model_version("xgb") is None

    one = await journal.activate_model_version("xgb-1", now=T0 + timedelta(hours=1))
    assert (one.version, one.active, one.activated_at, one.metrics, one.path) == (
        "xgb-1", True, T0 + timedelta(hours=1), {"auc": 0.61}, "models/xgb-1.json",
    )  # fmt: skip
    await journal.activate_model_version("hmm-1")
    await journal.activate_model_version("xgb-2")
    active = await journal.active_model_version("xgb")
    assert active is not None and active.version == "xgb-2"
    assert [(m.version, m.active) for m in await journal.model_versions("xgb")] == [
        ("xgb-2", True),
        ("xgb-1", False),
    ]
    hmm = await journal.active_model_version("hmm")
    assert hmm is not None and hmm.version == "hmm-1"
    with pytest.raises(KeyError, match="xgb-9"):
        await journal.activate_model_version("xgb-9")


async def test_audit_log_newest_first_and_by_user(journal: Journal) -> None:
    await journal.audit("/status", user_id=1, chat_id=10, allowed=True, result="ok", when=T0)
    await journal.audit("/close", user_id=2, chat_id=20, allowed=False, args="all", result="not allowed",
                        when=T0 + timedelta(seconds=1))  # fmt: skip
    eid = await journal.audit("/pause", user_id=1, chat_id=10, allowed=True, when=T0 + timedelta(seconds=2))
    entries = await journal.audit_entries()
    assert [e.command for e in entries] == ["/pause", "/close", "/status"]
    assert entries[0].id == eid
    denied = entries[1]
    assert (denied.user_id, denied.chat_id, denied.args, denied.result, denied.allowed) == (
        2,
        20,
        "all",
        "not allowed",
        False,
    )
    assert [e.command for e in await journal.audit_entries(user_id=1, limit=1)] == ["/pause"]


async def test_daily_summary_upsert(journal: Journal) -> None:
    day = date(2026, 3, 2)
    assert await journal.daily_summary(day) is None
    s1 = DailySummary(day, trades=2, wins=1, losses=1, profit=3.5, start_balance=1000.0, end_balance=1003.5)
    await journal.record_daily_summary(s1)
    s2 = DailySummary(day, trades=3, wins=2, losses=1, profit=8.0, start_balance=1000.0, end_balance=1008.0)
    await journal.record_daily_summary(s2)
    await journal.record_daily_summary(DailySummary(date(2026, 3, 1), 0, 0, 0, 0.0, 1000.0, 1000.0))
    assert await journal.daily_summary(day) == s2
    assert [s.day for s in await journal.daily_summaries()] == [date(2026, 3, 1), day]
    assert [s.day for s in await journal.daily_summaries(since=day)] == [day]


# --- restart and concurrency ----------------------------------------------------------------------


async def test_restart_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    j = await Journal(path).open()
    did = await j.record_decision(T0, "enter", side=Side.BUY)
    await j.record_trade_open(pos(1), decision_id=did)
    p2 = pos(2)
    await j.record_trade_open(p2)
    await j.record_trade_close(closed(p2, 2660.0, 20.0))
    await j.save_state({"paused": True, "risk_mode": "RECOVERY"})
    await j.save_risk_state(RiskState.fresh(1000.0, T0))
    await j.save_paper_state({"balance": 1020.0})
    await j.save_approval(_approval())
    await j.close()

    j2 = await Journal(path).open()  # migrations run again: a no-op at head
    try:
        assert [t.ticket for t in await j2.open_trades()] == [1]
        assert (await j2.open_trades())[0].decision_id == did
        closed_row = await j2.trade_by_ticket(2)
        assert closed_row is not None and closed_row.profit == 20.0
        assert (
            await j2.record_trade_close(closed(p2, 2660.0, 20.0)) is False
        )  # still idempotent after restart
        assert (await j2.load_state())["paused"] is True
        assert await j2.load_risk_state() == RiskState.fresh(1000.0, T0)
        assert await j2.load_paper_state() == {"balance": 1020.0}
        assert len(await j2.pending_approvals(T0 + timedelta(minutes=1))) == 1
        assert (await j2.sqlite_settings())["journal_mode"] == "wal"
    finally:
        await j2.close()


async def test_a_write_is_visible_to_another_connection_when_the_call_returns(journal: Journal) -> None:
    """Write before report: a separate reader (say, a new process) sees the row at once."""
    await journal.record_trade_open(pos(77))
    with sqlite3.connect(journal.path) as raw:
        assert raw.execute("select status from trades where ticket = 77").fetchall() == [("open",)]


async def test_concurrent_writes_from_many_tasks(journal: Journal) -> None:
    async def trader(k: int) -> None:
        p = pos(1000 + k, at=T0 + timedelta(seconds=k))
        did = await journal.record_decision(T0 + timedelta(seconds=k), "enter")
        await journal.record_trade_open(p, decision_id=did)
        await journal.record_trade_update_sl_tp(p.ticket, p.sl + 1, p.tp, reason="trail")
        await journal.record_trade_close(closed(p, 2651.0, 1.0))

    async def chatter(k: int) -> None:
        await journal.audit(f"/cmd{k}", user_id=k, chat_id=k, allowed=True)
        await journal.save_state({f"k{k % 3}": k})
        await journal.record_equity(T0 + timedelta(seconds=k), 1000.0, 1000.0 + k, 0)

    async def double_close(k: int) -> bool:
        return await journal.record_trade_close(closed(pos(5000, at=T0), 2651.0, 1.0))

    results = await asyncio.gather(
        *(trader(k) for k in range(12)),
        *(chatter(k) for k in range(12)),
        *(double_close(k) for k in range(6)),
    )
    assert sorted(results[24:]) == [False] * 5 + [True]
    assert len(await journal.closed_trades()) == 13
    assert len(await journal.decisions()) == 12
    assert len(await journal.audit_entries(limit=100)) == 12
    assert len(await journal.equity_snapshots()) == 12
    assert set(await journal.load_state()) == {"k0", "k1", "k2"}
    for k in range(12):
        assert [h.reason for h in await journal.sl_tp_history(1000 + k)] == ["open", "trail"]


_CHILD = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from bot.store import Journal
from trading.domain import ClosedTrade, Position, Side

async def main(path):
    j = await Journal(path).open()
    t0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    for i in range(1, 100000):
        p = Position(i, "XAUUSD", Side.BUY, 0.01, 2650.0, t0, sl=2645.0, tp=2660.0)
        await j.record_trade_open(p)
        await j.record_trade_close(ClosedTrade(i, "XAUUSD", Side.BUY, 0.01, 2650.0, 2651.0, t0,
                                               t0 + timedelta(minutes=1), 1.0, "tp"))
        await j.save_state({"closed": i})
        print(i, flush=True)  # the report goes out only after the writes returned

asyncio.run(main(sys.argv[1]))
"""


async def test_kill_9_mid_run_loses_nothing_that_was_reported(tmp_path: Path) -> None:
    import os
    import signal
    import sys

    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "crash.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(path), cwd=root, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert proc.stdout is not None
    reported = 0
    while reported < 25:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line, "child exited early"
        reported = int(line)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    j = await Journal(path).open()
    try:
        rows = {t.ticket: t for t in await j.trades()}
        for ticket in range(1, reported + 1):
            assert rows[ticket].status == "closed" and rows[ticket].profit == 1.0
        assert set(rows) <= set(range(1, reported + 3))  # at most the one in flight beyond the report
        assert (await j.load_state())["closed"] >= reported
        # the restarted writer picks up cleanly: a replayed close is a no-op, a new trade goes in
        assert not await j.record_trade_close(rows[1].to_closed_trade())
        assert await j.record_trade_open(pos(10**6))
    finally:
        await j.close()


async def test_update_decision_marks_a_refused_entry(tmp_path) -> None:
    from datetime import UTC, datetime

    from bot.store import Journal

    async with Journal(tmp_path / "d.db") as j:
        ident = await j.record_decision(datetime(2026, 3, 10, 9, 45, tzinfo=UTC), "enter", reason="BOS up")
        assert await j.update_decision(
            ident, action="order_failed", reason="broker refused the order: no money"
        )
        stored = await j.decision(ident)
        assert stored is not None and stored.action == "order_failed" and "no money" in stored.reason
        assert not await j.update_decision(ident + 99, action="order_failed", reason="x")
