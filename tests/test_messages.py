"""Notification texts: every event kind renders, escapes its dynamic strings, shows WIB times."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.messages import (
    FORMATTERS,
    NOT_NOTIFIED,
    fallback_text,
    fmt_duration,
    pips,
    render_event,
    section,
    signed,
)
from bot.transport import html_to_text
from tests.notify_samples import EVIL, T0, closed_trade, events
from trading.events import Event, EventKind
from trading.risk.approvals import ApprovalStatus

ALLOWED_TAGS = {"b", "i", "code", "/b", "/i", "/code"}


def tags(html: str) -> set[str]:
    return {m.split()[0] for m in re.findall(r"<([^>]+)>", html)}


def test_every_kind_is_rendered_or_deliberately_not() -> None:
    assert set(FORMATTERS) | NOT_NOTIFIED == set(EventKind)
    assert set(events()) == set(FORMATTERS)


@pytest.mark.parametrize("kind", sorted(FORMATTERS))
def test_each_kind_renders_valid_html_with_the_wib_clock(kind: EventKind) -> None:
    rendered = render_event(events()[kind])
    assert rendered is not None
    assert 0 < len(rendered.html) < 4096
    assert tags(rendered.html) <= ALLOWED_TAGS
    # T0 is 06:30 UTC = 13:30 WIB
    assert rendered.html.rstrip().endswith(("⏰ 13:30 WIB", "⏰ 2026-03-02 13:30 WIB"))


@pytest.mark.parametrize("kind", sorted(FORMATTERS))
def test_dynamic_strings_are_escaped(kind: EventKind) -> None:
    rendered = render_event(events(EVIL)[kind])
    assert rendered is not None
    assert tags(rendered.html) <= ALLOWED_TAGS, rendered.html
    assert "<script>" not in rendered.html and "<b>bold" not in rendered.html


def test_setup_reason_with_tags_arrives_escaped() -> None:
    html = render_event(events("<b>")[EventKind.TRADE_OPENED]).html  # type: ignore[union-attr]
    assert "FVG&lt;b&gt;" in html
    assert "FVG<b>" in html_to_text(html)


def test_trade_opened_fields() -> None:
    html = render_event(events()[EventKind.TRADE_OPENED]).html  # type: ignore[union-attr]
    text = html_to_text(html)
    assert "LONG (BUY)" in text and "#1001" in text
    assert "Entry: 2,345.50" in text and "Lot: 0.02" in text
    # |2345.5 - 2340.5| * 0.02 lot * 100 oz = $10 at risk; TP 10.0 away -> +$20, R:R 1:2.0
    assert "SL: 2,340.50 (-$10.00)" in text and "TP: 2,355.50 (+$20.00)" in text and "1:2.0" in text
    assert "Risk: $10.00" in text
    assert "ML: 71% BUY" in text and "thr 60%" in text
    assert "Session: London" in text and "Regime: medium" in text


def test_trade_closed_fields() -> None:
    text = html_to_text(render_event(events()[EventKind.TRADE_CLOSED]).html)  # type: ignore[union-attr]
    assert text.startswith("✅ WIN +$12.40 #1001")
    assert "2,345.50 → 2,351.70" in text
    assert "Pips: +62.0" in text  # 6.20 of price = 62 pips of $0.10
    assert "P/L: +$12.40 (+1.24%)" in text
    assert "Duration: 47m" in text
    assert "Reason: smart take-profit" in text
    assert "Before: $1,000.00" in text and "After: $1,012.40 (+$12.40)" in text


def test_trade_closed_loss_and_breakeven_headers() -> None:
    loss = Event(
        EventKind.TRADE_CLOSED,
        T0,
        {"trade": closed_trade(-5.0, "broker_sl"), "balance_before": 100.0, "balance_after": 95.0},
    )
    text = html_to_text(render_event(loss).html)  # type: ignore[union-attr]
    assert text.startswith("❌ LOSS -$5.00") and "stop-loss hit at the broker" in text and "(-$5.00)" in text
    be = Event(EventKind.TRADE_CLOSED, T0, {"trade": closed_trade(0.001, "some_new_rule")})
    text = html_to_text(render_event(be).html)  # type: ignore[union-attr]
    assert text.startswith("➖ BREAKEVEN") and "some new rule" in text and "Balance" not in text


def test_limit_hit_daily_vs_total() -> None:
    daily = html_to_text(render_event(events()[EventKind.LIMIT_HIT]).html)  # type: ignore[union-attr]
    assert "DAILY LOSS LIMIT" in daily and "00:00 WIB" in daily
    total = Event(
        EventKind.LIMIT_HIT, T0, {"old": "NORMAL", "new": "STOPPED", "reason": "total loss $100 reached"}
    )
    assert "TOTAL LOSS LIMIT" in html_to_text(render_event(total).html)  # type: ignore[union-attr]


def test_emergency_close_with_failed_tickets() -> None:
    e = Event(EventKind.EMERGENCY_CLOSE, T0, {"reason": "3%", "closed": 1, "failed": [5, 6]})
    text = html_to_text(render_event(e).html)  # type: ignore[union-attr]
    assert "Closed: 1 position\n" in text and "CLOSE FAILED for 5, 6" in text


def test_approval_statuses() -> None:
    from bot.messages import approval_resolved
    from tests.notify_samples import approval

    for status, word in (
        (ApprovalStatus.APPROVED, "✅ APPROVAL APPROVED"),
        (ApprovalStatus.REJECTED, "❌"),
        (ApprovalStatus.EXPIRED, "⌛"),
    ):
        e = Event(EventKind.APPROVAL_RESOLVED, T0, {"approval": approval(status)})
        assert word in html_to_text(approval_resolved(e))
    # answered with the buttons, the edited card is the answer: no second message (issue 14)
    for status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
        assert render_event(Event(EventKind.APPROVAL_RESOLVED, T0, {"approval": approval(status)})) is None
    expired = Event(EventKind.APPROVAL_RESOLVED, T0, {"approval": approval(ApprovalStatus.EXPIRED)})
    assert "⌛" in html_to_text(render_event(expired).html)  # type: ignore[union-attr]


def test_startup_and_shutdown_contents() -> None:
    start = html_to_text(render_event(events()[EventKind.STARTUP]).html)  # type: ignore[union-attr]
    for piece in (
        "BOT STARTED",
        "Symbol: XAUUSD",
        "Balance: $1,000.00",
        "Risk/Trade: 1%",
        "Max Daily Loss: 3%",
        "Lot: 0.01–0.02",
        "Max Positions: 2",
        "Mode: NORMAL",
        "adopted #77",
    ):
        assert piece in start
    stop = html_to_text(render_event(events()[EventKind.SHUTDOWN]).html)  # type: ignore[union-attr]
    for piece in (
        "BOT STOPPED",
        "Balance: $1,012.40",
        "Trades today: 3 (2 won)",
        "+$12.40",
        "Uptime: 5h 03m",
    ):
        assert piece in stop


def test_model_swapped_shows_metrics_old_to_new() -> None:
    text = html_to_text(render_event(events()[EventKind.MODEL_SWAPPED]).html)  # type: ignore[union-attr]
    assert "v1 → v2" in text and "AUC: 0.550 → 0.580" in text and "Holdout AUC: — → 0.570" in text


def test_default_silence_and_not_notified_kinds() -> None:
    assert render_event(events()[EventKind.SL_MOVED]).silent is True  # type: ignore[union-attr]
    assert render_event(events()[EventKind.TRADE_CLOSED]).silent is False  # type: ignore[union-attr]
    assert render_event(Event(EventKind.RISK_CHANGE_PROPOSED, T0, {})) is None
    assert render_event(Event(EventKind.TRAINING_PROGRESS, T0, {})) is None


def test_malformed_event_raises_and_fallback_is_escaped() -> None:
    bad = Event(EventKind.TRADE_CLOSED, T0, {}, "closed <#1>")
    with pytest.raises(KeyError):
        render_event(bad)
    assert "closed &lt;#1&gt;" in fallback_text(bad)


def test_helpers() -> None:
    assert signed(1234.5) == "+$1,234.50" and signed(-0.5) == "-$0.50"
    assert pips(1.0) == pytest.approx(10.0) and pips(-0.25) == pytest.approx(-2.5)
    assert [fmt_duration(s) for s in (0, 59, 60, 3599, 3600 + 5 * 60, 86400 + 7200)] == [
        "0s",
        "59s",
        "1m",
        "59m",
        "1h 05m",
        "1d 02h",
    ]
    assert section("T", []) == ""
    assert section("T", ["a", "", "b"]) == "<b>T</b>\n├ a\n└ b"
    assert fmt_duration(timedelta(minutes=2).total_seconds()) == "2m"


def test_startup_says_where_a_live_limit_differs_from_the_settings() -> None:
    from bot.messages import limits_drift_notes
    from trading.risk.modes import RiskLimits

    notes = limits_drift_notes(RiskLimits(risk_per_trade_pct=2.0), RiskLimits())
    assert notes == ["risk/trade is 2%, changed in the chat and kept (the setting says 1%)"]
    assert limits_drift_notes(RiskLimits(), RiskLimits()) == []
