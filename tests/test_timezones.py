"""Server clock conversions, WIB display and DST transitions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from trading.timezones import ServerClock, estimate_server_offset_hours, fmt_wib, to_wib, wib_date


@pytest.mark.parametrize(
    ("server", "utc"),
    [
        # winter: NY = UTC-5, server = UTC+2
        (datetime(2025, 1, 15, 12, 0), datetime(2025, 1, 15, 10, 0, tzinfo=UTC)),
        # summer: NY = UTC-4, server = UTC+3
        (datetime(2025, 7, 15, 12, 0), datetime(2025, 7, 15, 9, 0, tzinfo=UTC)),
        # US DST starts Sun 9 Mar 2025 02:00 NY (= 09:00 server); the Monday after is UTC+3
        (datetime(2025, 3, 10, 1, 0), datetime(2025, 3, 9, 22, 0, tzinfo=UTC)),
        # Friday before: still UTC+2
        (datetime(2025, 3, 7, 23, 45), datetime(2025, 3, 7, 21, 45, tzinfo=UTC)),
        # US DST ends Sun 2 Nov 2025
        (datetime(2025, 10, 31, 23, 45), datetime(2025, 10, 31, 20, 45, tzinfo=UTC)),
        (datetime(2025, 11, 3, 1, 0), datetime(2025, 11, 2, 23, 0, tzinfo=UTC)),
    ],
)
def test_ny_plus_7_follows_us_dst(server, utc):
    clock = ServerClock.parse("NY+7")
    assert clock.to_utc(server) == utc
    assert clock.from_utc(utc) == server


def test_daily_break_is_midnight_server_time_all_year():
    clock = ServerClock.parse("NY+7")
    for month in (1, 4, 7, 11, 12):
        ny_close = datetime(2025, month, 10, 17, 0).replace(
            tzinfo=__import__("zoneinfo").ZoneInfo("America/New_York")
        )
        assert clock.from_utc(ny_close.astimezone(UTC)).hour == 0


@pytest.mark.parametrize(
    ("spec", "kind", "hours"),
    [
        ("UTC+2", "fixed", 2),
        ("+03:00", "fixed", 3),
        ("GMT-5", "fixed", -5),
        ("UTC", "fixed", 0),
        ("ny+7", "ny", 7),
    ],
)
def test_parse_forms(spec, kind, hours):
    clock = ServerClock.parse(spec)
    assert (clock.kind, clock.hours) == (kind, hours)


def test_parse_iana_and_errors():
    assert ServerClock.parse("Europe/Athens").kind == "zone"
    with pytest.raises(ValueError, match="not 'NY\\+7'"):
        ServerClock.parse("Mars/Olympus")
    with pytest.raises(ValueError, match="beyond"):
        ServerClock.parse("UTC+15")


def test_series_matches_scalar_conversion_across_dst():
    times = [datetime(2025, 3, 7, 23, 45), datetime(2025, 3, 10, 1, 0), datetime(2025, 11, 3, 1, 0)]
    for spec in ("NY+7", "UTC+2", "Europe/Athens"):
        clock = ServerClock.parse(spec)
        series = clock.series_to_utc(pl.Series(times))
        assert series.to_list() == [clock.to_utc(t) for t in times]


def test_epoch_roundtrip():
    clock = ServerClock.parse("NY+7")
    t = datetime(2025, 6, 2, 13, 30, tzinfo=UTC)
    assert clock.epoch_to_utc(clock.utc_to_epoch(t)) == t


def test_wib_display_and_date_rollover():
    t = datetime(2025, 1, 15, 16, 59, tzinfo=UTC)  # 23:59 WIB
    assert fmt_wib(t) == "23:59 WIB"
    assert str(wib_date(t)) == "2025-01-15"
    t2 = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)  # 00:00 WIB next day
    assert str(wib_date(t2)) == "2025-01-16"
    assert fmt_wib(t2, with_date=True) == "2025-01-16 00:00 WIB"
    with pytest.raises(ValueError):
        fmt_wib(datetime(2025, 1, 1))


def test_estimate_server_offset():
    now = datetime(2025, 7, 1, 12, 0, 7, tzinfo=UTC)
    clock = ServerClock.parse("NY+7")
    epoch = clock.utc_to_epoch(now)
    assert estimate_server_offset_hours(epoch, now) == 3.0


def test_wib_date_kept_day_answers_as_the_zone_does() -> None:
    """`wib_date` keeps the bounds of the day it last answered: any order of times, across midnights
    and the zone's old offset changes, in UTC and in other zones, gives the zone's own date."""
    rng = random.Random(5)
    moment = datetime(1930, 1, 1, tzinfo=UTC)
    for _ in range(20_000):
        moment += timedelta(seconds=rng.choice([1, 59, 900, 6 * 3600, 3 * 86400, 400 * 86400]))
        back = moment - timedelta(seconds=rng.choice([0, 1, 3600, 86400 * 900]))
        for t in (moment, back, back.astimezone(timezone(timedelta(hours=-5)))):
            assert wib_date(t) == to_wib(t).date(), t


def test_ms_of_is_at_ms_inverse_where_a_float_timestamp_is_not() -> None:
    from trading.timezones import at_ms, ms_of

    ms = 1_078_625_331_860  # a tick's time whose float timestamp() * 1000 truncates to ...859
    assert int(at_ms(ms).timestamp() * 1000) == ms - 1
    assert ms_of(at_ms(ms)) == ms
    assert all(ms_of(at_ms(m)) == m for m in range(ms - 5_000, ms + 5_000))
