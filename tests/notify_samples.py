"""Hand-made engine events of every kind, shaped like trading/engine.py publishes them (for message tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.messages import error_burst_event, news_event, shutdown_event, startup_event
from trading.domain import ClosedTrade, Side
from trading.events import Event, EventKind
from trading.gates import GateResult
from trading.records import Decision, OpenedTrade
from trading.risk.approvals import Approval, ApprovalStatus, RiskChange
from trading.risk.modes import RiskLimits

T0 = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # 13:30 WIB
EVIL = "<b>bold</b> & <script>"


def decision(reason: str = "bullish FVG retest", p_up: float = 0.71) -> Decision:
    gates = (
        GateResult("session", True, "London"),
        GateResult("ml_confidence", True, "0.71 >= 0.60"),
    )
    return Decision(
        bar_time=T0 - timedelta(minutes=15),
        action="enter",
        side=Side.BUY,
        reason=reason,
        gates=gates,
        regime="medium",
        p_up=p_up,
        threshold=0.6,
        setup_reason=reason,
        lot=0.02,
        id=41,
    )


def opened_trade(setup: str = "bullish FVG retest") -> OpenedTrade:
    return OpenedTrade(
        ticket=1001,
        side=Side.BUY,
        volume=0.02,
        open_price=2345.5,
        open_time=T0,
        sl=2340.5,
        tp=2355.5,
        magic=20260301,
        comment="xau-bot",
        decision_id=41,
        requested_price=2345.4,
        risk_money=10.0,
        extra={"setup": setup, "regime": "medium", "session": "London"},
    )


def closed_trade(
    profit: float = 12.4, reason: str = "smart_take_profit", detail: str = "hard TP"
) -> ClosedTrade:
    return ClosedTrade(
        ticket=1001,
        symbol="XAUUSD",
        side=Side.BUY,
        volume=0.02,
        open_price=2345.5,
        close_price=2351.7,
        open_time=T0,
        close_time=T0 + timedelta(minutes=47, seconds=10),
        profit=profit,
        reason=reason,
        sl=2340.5,
        tp=2355.5,
        extra={"detail": detail},
    )


def approval(status: ApprovalStatus = ApprovalStatus.APPROVED) -> Approval:
    return Approval(
        id="ab12cd34",
        change=RiskChange("mode", "set mode NORMAL", {"mode": "NORMAL"}),
        requested_by="alice",
        reason="requested by alice",
        created=T0,
        expires=T0 + timedelta(minutes=10),
        status=status,
        resolved_by="alice",
        resolved_at=T0 + timedelta(minutes=1),
    )


def events(evil: str = "") -> dict[EventKind, Event]:
    """One event per kind the notifier renders; `evil` is appended to every free-text field."""
    x = evil
    return {
        EventKind.TRADE_OPENED: Event(
            EventKind.TRADE_OPENED,
            T0,
            {"trade": opened_trade("FVG" + x), "decision": decision("FVG" + x)},
            "opened",
        ),
        EventKind.TRADE_CLOSED: Event(
            EventKind.TRADE_CLOSED,
            T0,
            {
                "trade": closed_trade(detail="hard TP" + x),
                "balance_before": 1000.0,
                "balance_after": 1012.4,
                "by": "exit_rules" + x,
            },
            "closed",
        ),
        EventKind.SL_MOVED: Event(
            EventKind.SL_MOVED,
            T0,
            {"ticket": 1001, "sl": 2345.6, "old_sl": 2340.5, "reason": "breakeven" + x},
            "sl",
        ),
        EventKind.LIMIT_HIT: Event(
            EventKind.LIMIT_HIT,
            T0,
            {"old": "PROTECTED", "new": "STOPPED", "reason": "daily loss $30.00 reached" + x},
            "limit",
        ),
        EventKind.EMERGENCY_CLOSE: Event(
            EventKind.EMERGENCY_CLOSE, T0, {"reason": "2.61% within 60 s" + x, "closed": 2}, "emergency"
        ),
        EventKind.RISK_MODE_CHANGED: Event(
            EventKind.RISK_MODE_CHANGED,
            T0,
            {"old": "NORMAL", "new": "RECOVERY", "reason": "3 losses in a row" + x},
            "m",
        ),
        EventKind.RISK_CHANGE_APPLIED: Event(
            EventKind.RISK_CHANGE_APPLIED,
            T0,
            {"change": RiskChange("mode", "set mode PROTECTED" + x, {"mode": "PROTECTED"}), "by": "bob" + x},
            "a",
        ),
        EventKind.APPROVAL_RESOLVED: Event(
            EventKind.APPROVAL_RESOLVED, T0, {"approval": approval(ApprovalStatus.EXPIRED)}, "resolved"
        ),
        EventKind.PAUSED: Event(EventKind.PAUSED, T0, {"by": "alice" + x}, "paused"),
        EventKind.RESUMED: Event(EventKind.RESUMED, T0, {"by": "alice" + x}, "resumed"),
        EventKind.MODEL_SWAPPED: Event(
            EventKind.MODEL_SWAPPED,
            T0,
            {
                "trigger": "schedule" + x,
                "by": "auto",
                "old_version": "v1",
                "new_version": "v2" + x,
                "old_metrics": {"auc": 0.55, "accuracy": 0.54},
                "new_metrics": {"auc": 0.58, "accuracy": 0.56, "holdout_auc": 0.57},
            },
            "swap",
        ),
        EventKind.ERROR_BURST: error_burst_event(
            T0, count=20, window=timedelta(minutes=5), threshold=20, last_error="ConnectionLost: pipe" + x
        ),
        EventKind.NEWS_BLACKOUT: news_event(
            T0,
            active=True,
            title="US CPI" + x,
            reason="high impact",
            until=T0 + timedelta(minutes=60),
            buffer_minutes=60,
        ),
        EventKind.ORDER_FAILED: Event(
            EventKind.ORDER_FAILED,
            T0,
            {"error": "retcode 10019 no money" + x, "decision": decision()},
            "failed",
        ),
        EventKind.STARTUP: startup_event(
            T0,
            balance=1000.0,
            equity=1000.0,
            config={"Symbol": "XAUUSD", "Broker": "paper" + x, "Model": "v2"},
            limits=RiskLimits(),
            mode="NORMAL",
            notes=["adopted #77" + x],
        ),
        EventKind.SHUTDOWN: shutdown_event(
            T0,
            balance=1012.4,
            started=T0 - timedelta(hours=5, minutes=3),
            trades_today=3,
            wins_today=2,
            profit_today=12.4,
            mode="NORMAL",
            reason="SIGTERM" + x,
        ),
        EventKind.INFO: Event(EventKind.INFO, T0, {"day": "2026-03-02"}, "new trading day" + x),
        EventKind.JOURNAL: Event(
            EventKind.JOURNAL,
            T0,
            {"ok": False, "path": "data/xaubot.db" + x, "error": "database or disk is full" + x, "since": T0},
            "journal cannot write" + x,
        ),
    }
