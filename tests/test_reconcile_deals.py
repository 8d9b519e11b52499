"""The start-up reconcile: every closed journal trade equals its broker deals to the cent (corrected and
audited when not), a trade the broker has and the journal lacks is booked from its deals."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.store import Journal
from tests.test_app import make_settings, no_telegram_env, patch_broker, started
from trading.domain import ClosedTrade, Deal, DealEntry, DealReason, Position, Side
from trading.timezones import to_wib, utc_now

__all__ = ["no_telegram_env"]  # the autouse fixture: settings from the overrides only


def _deals(position: int, opened, closed, *, profit: float, commission: float = -0.35, swap: float = 0.0):
    return [
        Deal(
            ticket=position * 10,
            position_ticket=position,
            symbol="XAUUSD",
            side=Side.BUY,
            entry=DealEntry.IN,
            volume=0.1,
            price=2000.0,
            time=opened,
            commission=commission,
            magic=150015,
        ),
        Deal(
            ticket=position * 10 + 1,
            position_ticket=position,
            symbol="XAUUSD",
            side=Side.SELL,
            entry=DealEntry.OUT,
            volume=0.1,
            price=2000.0 + profit / 10,
            time=closed,
            profit=profit,
            commission=commission,
            swap=swap,
            magic=150015,
            reason=DealReason.SL,
        ),
    ]


async def test_journal_correction_rewrites_the_row_and_audits_it(tmp_path: Path) -> None:
    opened = utc_now() - timedelta(hours=2)
    trade = ClosedTrade(
        ticket=41,
        symbol="XAUUSD",
        side=Side.BUY,
        volume=0.1,
        open_price=2000.0,
        close_price=1998.83,
        open_time=opened,
        close_time=opened + timedelta(minutes=30),
        profit=-1.17,
        reason="broker",
        extra={"pl_source": "estimate"},
    )
    async with Journal(tmp_path / "j.db") as journal:
        await journal.record_trade_open(
            Position(
                ticket=41, symbol="XAUUSD", side=Side.BUY, volume=0.1, open_price=2000.0, open_time=opened
            )
        )
        assert await journal.correct_trade_close(trade) is None  # still open: nothing to correct
        assert await journal.record_trade_close(trade)
        truth = replace(
            trade,
            profit=-1.90,
            close_price=1998.2,
            reason="broker_sl",
            extra={"pl_source": "deals", "commission": -0.7, "swap": -0.03},
        )
        assert await journal.correct_trade_close(truth) == pytest.approx(-1.17)
        row = await journal.trade_by_ticket(41)
        assert (
            row is not None and row.profit == pytest.approx(-1.90) and row.commission == pytest.approx(-0.7)
        )
        assert (
            row.swap == pytest.approx(-0.03) and row.exit_reason == "broker_sl" and row.close_price == 1998.2
        )
        assert row.extra["booked_profit"] == pytest.approx(-1.17)
        [entry] = await journal.audit_entries()
        assert entry.command == "reconcile" and entry.args == "#41" and "-1.17 -> -1.90" in entry.result
        assert await journal.correct_trade_close(truth) is None  # the same again: nothing written
        assert len(await journal.audit_entries()) == 1


async def test_startup_corrects_a_wrong_close_and_books_a_missing_one(tmp_path, monkeypatch) -> None:
    now = utc_now()
    # both closed today (WIB), so today's count has them whatever the hour (a close on an earlier day
    # counts in no day of today: test_app)
    since_midnight = to_wib(now) - to_wib(now).replace(hour=0, minute=0, second=0, microsecond=0)
    step = min(timedelta(hours=1), since_midnight / 4)
    wrong = _deals(701, now - 3 * step, now - 2 * step, profit=-1.2, swap=-0.5)
    unknown = _deals(702, now - 2 * step, now - step, profit=4.0)
    settings = make_settings(tmp_path)
    async with Journal(settings.database_path) as journal:
        await journal.record_trade_open(
            Position(
                ticket=701,
                symbol="XAUUSD",
                side=Side.BUY,
                volume=0.1,
                open_price=2000.0,
                open_time=wrong[0].time,
            )
        )
        await journal.record_trade_close(
            ClosedTrade(
                ticket=701,
                symbol="XAUUSD",
                side=Side.BUY,
                volume=0.1,
                open_price=2000.0,
                close_price=1998.83,
                open_time=wrong[0].time,
                close_time=wrong[1].time,
                profit=-1.17,
                reason="broker",
                extra={"pl_source": "estimate"},
            )
        )
    patch_broker(monkeypatch, deals=[*wrong, *unknown])
    app = await started(settings)
    try:
        fixed = await app.journal.trade_by_ticket(701)
        assert fixed is not None and fixed.profit == pytest.approx(-1.2 - 0.7 - 0.5)
        assert fixed.exit_reason == "broker_sl" and fixed.commission == pytest.approx(-0.7)
        booked = await app.journal.trade_by_ticket(702)
        assert booked is not None and booked.status == "closed" and booked.profit == pytest.approx(4.0 - 0.7)
        audits = {e.args: e.result for e in await app.journal.audit_entries() if e.command == "reconcile"}
        assert set(audits) == {"#701", "#702"}
        assert any("#701 P/L corrected" in n for n in app.notes)
        assert any("#702" in n and "booked from its deals" in n for n in app.notes)
        assert app.engine.state is not None and app.engine.state.daily_trades >= 1
    finally:
        await app.shutdown("test")
    app = await started(settings)  # a second start finds nothing left to correct
    try:
        assert not any("corrected" in n or "booked from its deals" in n for n in app.notes)
        assert len([e for e in await app.journal.audit_entries() if e.command == "reconcile"]) == 2
    finally:
        await app.shutdown("test")
