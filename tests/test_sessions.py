"""Sessions (WIB table, blocked windows, golden time) and New York market hours across DST."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.sessions import (
    DAILY_BREAK_REASON,
    FRIDAY_CUTOFF_REASON,
    SESSION_TABLE,
    WEEKEND_REASON,
    is_market_open,
    market_open_mask,
    market_status,
    ny_weekday_minute,
    session_at,
    session_names,
    sessions_at,
)
from trading.timezones import NEW_YORK, WIB


def wib(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=WIB).astimezone(UTC)


def ny(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NEW_YORK).astimezone(UTC)


# Wednesday 25 Nov 2026 in WIB (US winter: WIB = New York + 12 h, daily break 05:00-05:59 WIB)
@pytest.mark.parametrize(
    ("hh", "mm", "name", "allowed", "multiplier", "golden", "reason_part"),
    [
        (0, 0, "Off Hours", False, 0.0, False, "dead zone"),
        (3, 59, "Off Hours", False, 0.0, False, "dead zone"),
        (4, 0, "Off Hours", False, 0.0, False, "rollover"),
        (4, 59, "Off Hours", False, 0.0, False, "rollover"),
        (5, 0, "Market Closed", False, 0.0, False, "daily break"),
        (5, 59, "Market Closed", False, 0.0, False, "daily break"),
        (6, 0, "Sydney", True, 0.5, False, ""),
        (13, 0, "Sydney", True, 0.5, False, ""),
        (13, 1, "Tokyo", True, 0.7, False, ""),
        (14, 59, "Tokyo", True, 0.7, False, ""),
        (15, 0, "Tokyo-London Overlap", False, 0.0, False, "overlap"),
        (16, 0, "Tokyo-London Overlap", False, 0.0, False, "overlap"),
        (16, 1, "London", True, 1.0, False, ""),
        (19, 59, "London", True, 1.0, False, ""),
        (20, 0, "Golden Time", True, 1.2, True, ""),
        (23, 59, "Golden Time", True, 1.2, True, ""),
    ],
)
def test_session_table_at_boundary_minutes(hh, mm, name, allowed, multiplier, golden, reason_part):
    info = session_at(wib(2026, 11, 25, hh, mm))
    assert info.name == name
    assert info.allowed is allowed
    assert info.multiplier == multiplier
    assert info.is_golden is golden
    if reason_part:
        assert reason_part in info.reason
    else:
        assert info.reason == ""


def test_volatility_labels_follow_the_spec():
    vols = {r.name: r.volatility for r in SESSION_TABLE}
    assert vols == {
        "Off Hours": "low",
        "Sydney": "low",
        "Tokyo": "medium",
        "Tokyo-London Overlap": "high",
        "London": "high",
        "Golden Time": "extreme",
    }


def test_rollover_visible_in_summer_when_the_break_is_earlier():
    # US summer: WIB = New York + 11 h, the break is 04:00-04:59 WIB, 05:00-05:59 is the rollover zone
    assert session_at(wib(2026, 7, 15, 4, 30)).reason == DAILY_BREAK_REASON
    info = session_at(wib(2026, 7, 15, 5, 0))
    assert info.market_open and not info.allowed and "rollover" in info.reason
    assert session_at(wib(2026, 7, 15, 6, 0)).name == "Sydney"


def test_table_covers_every_minute_once():
    minutes = [m for r in SESSION_TABLE for m in range(r.start, r.end + 1)]
    assert minutes == list(range(24 * 60))
    assert [r.window for r in SESSION_TABLE if r.golden] == ["20:00-23:59 WIB"]


def test_around_wib_midnight():
    before = session_at(wib(2026, 11, 25, 23, 59))
    after = session_at(wib(2026, 11, 26, 0, 0))
    assert before.is_golden and before.allowed
    assert not after.is_golden and not after.allowed and "dead zone" in after.reason
    # seconds count: 23:59:59 is still golden
    assert session_at(wib(2026, 11, 25, 23, 59) + timedelta(seconds=59)).is_golden


def test_any_aware_zone_gives_the_same_answer():
    t = wib(2026, 11, 25, 21, 15)
    assert session_at(t.astimezone(WIB)) == session_at(t) == session_at(t.astimezone(NEW_YORK))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="aware"):
        session_at(datetime(2026, 11, 25, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        market_status(datetime(2026, 11, 25, 12, 0))
    with pytest.raises(TypeError, match="datetime"):
        is_market_open("2026-11-25T12:00Z")  # type: ignore[arg-type]


def test_records_are_frozen():
    info = session_at(wib(2026, 11, 25, 21, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.allowed = False  # type: ignore[misc]


class TestFridayNight:
    def test_friday_golden_time_still_trades(self):
        info = session_at(wib(2026, 11, 27, 23, 59))  # Fri 11:59 New York
        assert info.allowed and info.is_golden

    def test_cutoff_last_hour_before_weekly_close_winter(self):
        # winter: Fri 16:00 New York = Sat 04:00 WIB
        assert "dead zone" in session_at(ny(2026, 11, 27, 15, 59)).reason
        for minute in (0, 30, 59):
            info = session_at(ny(2026, 11, 27, 16, minute))
            assert info.reason == FRIDAY_CUTOFF_REASON and not info.allowed and info.market_open
        closed = session_at(ny(2026, 11, 27, 17, 0))
        assert closed.reason == WEEKEND_REASON and not closed.market_open

    def test_cutoff_in_summer_falls_at_03_wib(self):
        t = ny(2026, 7, 17, 16, 0)
        assert t.astimezone(WIB).strftime("%a %H:%M") == "Sat 03:00"
        assert session_at(t).reason == FRIDAY_CUTOFF_REASON
        assert session_at(t - timedelta(minutes=1)).reason.startswith("dead zone")

    def test_saturday_and_sunday_are_closed(self):
        for t in (wib(2026, 11, 28, 12, 0), wib(2026, 11, 28, 21, 0), wib(2026, 11, 29, 20, 0)):
            info = session_at(t)
            assert info.name == "Market Closed" and info.reason == WEEKEND_REASON
            assert not info.is_golden and info.multiplier == 0.0
            assert not is_market_open(t)

    def test_status_near_weekend(self):
        exactly_two_hours = market_status(ny(2026, 11, 27, 15, 0))
        assert exactly_two_hours.near_weekend and exactly_two_hours.minutes_to_weekly_close == 120
        assert not market_status(ny(2026, 11, 27, 14, 59)).near_weekend
        thursday = market_status(ny(2026, 11, 26, 16, 0))
        assert not thursday.near_weekend and thursday.minutes_to_daily_close == 60


class TestSundayOpen:
    def test_winter_open_is_monday_06_wib_and_sydney_trades(self):
        assert not is_market_open(ny(2026, 11, 29, 17, 59))
        t = ny(2026, 11, 29, 18, 0)
        assert t.astimezone(WIB).strftime("%a %H:%M") == "Mon 06:00"
        info = session_at(t)
        assert info.market_open and info.allowed and info.name == "Sydney"

    def test_summer_open_is_monday_05_wib_inside_rollover(self):
        t = ny(2026, 7, 19, 18, 0)
        assert t.astimezone(WIB).strftime("%a %H:%M") == "Mon 05:00"
        info = session_at(t)
        assert info.market_open and not info.allowed and "rollover" in info.reason

    def test_sunday_before_open_is_weekend_not_daily_break(self):
        assert session_at(ny(2026, 11, 29, 17, 30)).reason == WEEKEND_REASON

    def test_status_during_weekend(self):
        s = market_status(wib(2026, 11, 28, 12, 0))
        assert not s.is_open and s.reason == WEEKEND_REASON
        assert s.next_open_utc == ny(2026, 11, 29, 18, 0) == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
        assert s.next_close_utc == ny(2026, 11, 30, 17, 0)
        assert s.minutes_to_daily_close is None and s.minutes_to_weekly_close is None
        assert not s.near_weekend
        # from the very moment of the weekly close
        s = market_status(ny(2026, 11, 27, 17, 0))
        assert s.next_open_utc == ny(2026, 11, 29, 18, 0)


class TestDailyBreak:
    def test_break_minutes(self):
        assert is_market_open(ny(2026, 11, 24, 16, 59))
        assert session_at(ny(2026, 11, 24, 17, 0)).reason == DAILY_BREAK_REASON
        assert session_at(ny(2026, 11, 24, 17, 59)).reason == DAILY_BREAK_REASON
        assert is_market_open(ny(2026, 11, 24, 18, 0))

    def test_status_in_break(self):
        s = market_status(ny(2026, 11, 24, 17, 20))
        assert not s.is_open and s.reason == DAILY_BREAK_REASON
        assert s.next_open_utc == ny(2026, 11, 24, 18, 0)
        assert s.next_close_utc == ny(2026, 11, 25, 17, 0)

    def test_status_when_open(self):
        s = market_status(ny(2026, 11, 23, 9, 30))  # Monday morning New York
        assert s.is_open and s.reason == "open"
        assert s.next_close_utc == ny(2026, 11, 23, 17, 0)
        assert s.next_open_utc == ny(2026, 11, 23, 18, 0)
        assert s.minutes_to_daily_close == 450
        assert s.minutes_to_weekly_close == 4 * 1440 + 450
        evening = market_status(ny(2026, 11, 26, 19, 0))  # Thursday evening: next close is the weekly one
        assert evening.next_close_utc == ny(2026, 11, 27, 17, 0)
        assert evening.next_open_utc == ny(2026, 11, 29, 18, 0)
        assert evening.minutes_to_daily_close == evening.minutes_to_weekly_close == 22 * 60

    def test_sunday_evening_counts_to_monday_and_friday(self):
        s = market_status(ny(2026, 11, 29, 18, 0))
        assert s.next_close_utc == ny(2026, 11, 30, 17, 0)
        assert s.minutes_to_daily_close == 23 * 60
        assert s.minutes_to_weekly_close == 4 * 1440 + 23 * 60

    def test_fractional_minutes(self):
        s = market_status(ny(2026, 11, 24, 16, 59) + timedelta(seconds=30))
        assert s.minutes_to_daily_close == pytest.approx(0.5)


def closed_utc_minutes(day_utc: datetime) -> list[str]:
    """The UTC hh:mm of every closed minute of one UTC day (weekday => just the daily break)."""
    out = []
    for m in range(24 * 60):
        t = day_utc + timedelta(minutes=m)
        if not is_market_open(t):
            out.append(t.strftime("%H:%M"))
    return out


class TestDST:
    """US DST 2026: starts Sun 8 March, ends Sun 1 November. WIB never moves; the break does."""

    @pytest.mark.parametrize(
        ("day", "utc_start", "wib_start"),
        [
            (datetime(2026, 3, 5, tzinfo=UTC), "22:00", "05:00"),  # Thu, EST
            (datetime(2026, 3, 9, tzinfo=UTC), "21:00", "04:00"),  # Mon, EDT
            (datetime(2026, 10, 29, tzinfo=UTC), "21:00", "04:00"),  # Thu, EDT
            (datetime(2026, 11, 2, tzinfo=UTC), "22:00", "05:00"),  # Mon, EST
        ],
    )
    def test_break_moves_in_utc_and_wib_but_not_in_new_york(self, day, utc_start, wib_start):
        closed = closed_utc_minutes(day)
        assert len(closed) == 60
        assert closed[0] == utc_start
        start = day.replace(hour=int(utc_start[:2]))
        assert start.astimezone(NEW_YORK).strftime("%H:%M") == "17:00"
        assert start.astimezone(WIB).strftime("%H:%M") == wib_start
        assert market_status(start).reason == DAILY_BREAK_REASON

    def test_weekly_open_on_the_dst_days(self):
        # DST starts at 02:00 on Sunday 8 March: that evening's 18:00 open is already EDT (22:00 UTC)
        assert not is_market_open(datetime(2026, 3, 8, 21, 59, tzinfo=UTC))
        assert is_market_open(datetime(2026, 3, 8, 22, 0, tzinfo=UTC))
        # DST ends at 02:00 on Sunday 1 November: the open is EST (23:00 UTC)
        assert not is_market_open(datetime(2026, 11, 1, 22, 59, tzinfo=UTC))
        assert is_market_open(datetime(2026, 11, 1, 23, 0, tzinfo=UTC))

    def test_weekly_close_before_the_changes(self):
        # Fri 6 March (EST) closes 22:00 UTC; Fri 30 October (EDT) closes 21:00 UTC
        assert market_status(datetime(2026, 3, 6, 12, tzinfo=UTC)).next_close_utc == datetime(
            2026, 3, 6, 22, tzinfo=UTC
        )
        s = market_status(datetime(2026, 10, 30, 12, tzinfo=UTC))
        assert s.next_close_utc == datetime(2026, 10, 30, 21, tzinfo=UTC)
        assert s.next_open_utc == datetime(2026, 11, 1, 23, tzinfo=UTC)  # reopens after the switch

    def test_status_across_the_march_switch(self):
        s = market_status(datetime(2026, 3, 7, 12, tzinfo=UTC))  # Saturday
        assert s.next_open_utc == datetime(2026, 3, 8, 22, tzinfo=UTC)
        assert s.next_close_utc == datetime(2026, 3, 9, 21, tzinfo=UTC)
        # the last Sunday hour before the open, right after the switch
        assert session_at(datetime(2026, 3, 8, 21, 30, tzinfo=UTC)).reason == WEEKEND_REASON


def test_scalar_and_vectorised_market_hours_agree_across_both_dst_changes():
    for start in (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 10, 25, tzinfo=UTC)):
        times = pl.datetime_range(start, start + timedelta(days=14), "15m", time_zone="UTC", eager=True)
        mask = market_open_mask(times)
        scalar = [is_market_open(t) for t in times.to_list()]
        assert mask.tolist() == scalar
        assert sum(scalar) == 2 * 460  # 115 trading hours a week


def test_vectorised_session_names_match_session_at():
    times = pl.datetime_range(
        datetime(2026, 11, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 0, tzinfo=UTC),
        "1m",
        time_zone="UTC",
        eager=True,
    )
    names = session_names(times)
    for t, name in zip(times.to_list(), names, strict=True):
        info = session_at(t)
        if info.market_open:
            assert info.name == name


def test_market_status_and_session_agree_on_open():
    t = datetime(2026, 11, 23, tzinfo=UTC)
    for m in range(0, 7 * 24 * 60, 7):
        at = t + timedelta(minutes=m)
        assert session_at(at).market_open == market_status(at).is_open == is_market_open(at)


def test_vectorised_new_york_clock_matches_polars_over_years():
    # hourly instants 2019-2031 plus the minutes around every switch: our offset steps vs chrono-tz
    times = pl.datetime_range(
        datetime(2019, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC), "1h", time_zone="UTC", eager=True
    )
    weekday, minute = ny_weekday_minute(times)
    ny_times = times.dt.convert_time_zone(NEW_YORK.key)
    assert (weekday == (ny_times.dt.weekday() - 1).to_numpy()).all()
    assert (minute == (ny_times.dt.hour().cast(pl.Int64) * 60 + ny_times.dt.minute()).to_numpy()).all()
    assert ny_weekday_minute(times.head(0))[0].size == 0


def test_vectorised_helpers_refuse_naive_times():
    naive = pl.Series([datetime(2026, 1, 5, 12)])
    with pytest.raises(ValueError, match="aware"):
        market_open_mask(naive)
    with pytest.raises(ValueError, match="aware"):
        session_names(naive)


def test_sessions_at_is_session_at_minute_by_minute() -> None:
    """The vectorised sessions (a backtest frame's rows) are `session_at`'s own records, minute by minute
    over both New York DST switches of a year and a spread of instants from 1970 on."""
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) // 60
    year = np.arange(start, start + 366 * 24 * 60, 7)  # every 7th minute: all weekdays and minutes
    spread = np.random.default_rng(3).integers(0, 30_000_000, 20_000)
    minutes = np.concatenate([year, spread])
    for minute, got in zip(minutes.tolist(), sessions_at(minutes), strict=True):
        assert got is session_at(datetime.fromtimestamp(minute * 60, UTC)), minute
