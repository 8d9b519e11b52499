"""News blackout from local calendar files (JSON and CSV)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trading.news import BlackoutRules, CalendarError, NewsCalendar, parse_calendar

EVENTS = [
    {
        "title": "Non-Farm Employment Change",
        "country": "USD",
        "date": "2026-03-06T08:30:00-05:00",
        "impact": "High",
    },
    {"title": "FOMC Statement", "country": "USD", "date": "2026-03-18T14:00:00-04:00", "impact": "High"},
    {"title": "German Prelim CPI", "country": "EUR", "date": "2026-03-06T08:00:00-05:00", "impact": "High"},
    {
        "title": "Crude Oil Inventories",
        "country": "USD",
        "date": "2026-03-06T10:30:00-05:00",
        "impact": "Medium",
    },
]
NFP = datetime(2026, 3, 6, 13, 30, tzinfo=UTC)
FOMC = datetime(2026, 3, 18, 18, 0, tzinfo=UTC)


@pytest.fixture
def calendar(tmp_path: Path) -> NewsCalendar:
    path = tmp_path / "week.json"
    path.write_text(json.dumps(EVENTS))
    cal = NewsCalendar(str(path))
    assert cal.refresh() == 4
    return cal


@pytest.mark.parametrize(
    ("offset_min", "blocked"), [(-16, False), (-15, True), (0, True), (30, True), (31, False)]
)
def test_nfp_window_is_15_before_to_30_after(calendar: NewsCalendar, offset_min: int, blocked: bool) -> None:
    assert calendar.status(NFP + timedelta(minutes=offset_min)).blocked is blocked


def test_fomc_has_45_minutes_after(calendar: NewsCalendar) -> None:
    assert calendar.status(FOMC + timedelta(minutes=44)).blocked
    assert not calendar.status(FOMC + timedelta(minutes=46)).blocked


def test_other_currencies_and_medium_impact_do_not_block(calendar: NewsCalendar) -> None:
    german_cpi = datetime(2026, 3, 6, 13, 0, tzinfo=UTC)
    oil = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
    assert not calendar.status(german_cpi - timedelta(minutes=14)).blocked
    assert not calendar.status(oil).blocked


def test_reason_names_the_event_and_the_end_in_wib(calendar: NewsCalendar) -> None:
    status = calendar.status(NFP - timedelta(minutes=10))
    assert "Non-Farm" in status.reason and "in 10 min" in status.reason and "21:00 WIB" in status.reason


def test_upcoming_and_next(calendar: NewsCalendar) -> None:
    before = NFP - timedelta(minutes=50)
    assert [e.title for e in calendar.upcoming(before)] == ["Non-Farm Employment Change"]
    assert calendar.next_event(NFP + timedelta(hours=1)).title == "FOMC Statement"  # type: ignore[union-attr]


def test_csv_calendar(tmp_path: Path) -> None:
    text = "title,country,date,impact\nCPI m/m,USD,2026-03-11T08:30:00-04:00,High\n"
    events = parse_calendar(text)
    assert events[0].time == datetime(2026, 3, 11, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"title": "CPI", "country": "USD", "date": "soon", "impact": "High"}]', "event 1: bad date"),
        (
            '[{"title": "CPI", "country": "USD", "date": "2026-03-11T08:30:00", "impact": "High"}]',
            "no UTC offset",
        ),
        ('[{"title": "CPI", "date": "2026-03-11T08:30:00Z", "impact": "High"}]', "missing country"),
        ("[{", "not valid JSON"),
    ],
)
def test_bad_calendar_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_calendar(text)


def test_failed_refresh_keeps_old_events(calendar: NewsCalendar, tmp_path: Path) -> None:
    bad = tmp_path / "week.json"
    bad.write_text("[{")
    assert calendar.refresh() == 4
    assert "not valid JSON" in calendar.last_error


def test_rules_are_configurable() -> None:
    rules = BlackoutRules(before_minutes=30, after_minutes=60)
    cal = NewsCalendar(events=parse_calendar(json.dumps(EVENTS)), rules=rules)
    assert cal.status(NFP - timedelta(minutes=29)).blocked
    assert cal.status(NFP + timedelta(minutes=59)).blocked
