"""One clock per message: the market's, labelled on a replay; wall time (uptime, expiry) said as such."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.messages import clock_line, shutdown, shutdown_event
from handlers.clock import market_clock_line, set_market_replay, uptime, wall_time

MARKET = datetime(2026, 3, 2, 11, 35, tzinfo=UTC)  # 18:35 WIB on the replayed market


@pytest.fixture
def replay() -> Iterator[None]:
    set_market_replay(60)
    yield
    set_market_replay(None)


def test_live_market_clock_has_no_label() -> None:
    set_market_replay(None)  # an app started by another test may have left its replay label set
    assert market_clock_line(MARKET) == "⏰ 18:35 WIB"
    assert wall_time(MARKET) == "18:35 WIB"


def test_replayed_market_clock_is_labelled_and_wall_times_say_real_time(replay: None) -> None:
    assert clock_line(MARKET) == "⏰ 18:35 WIB · market replay 60×"
    assert market_clock_line(MARKET, with_date=True) == "⏰ 2026-03-02 18:35 WIB · market replay 60×"
    assert wall_time(datetime(2026, 3, 2, 1, 44, tzinfo=UTC)) == "08:44 WIB real time"


def test_uptime_is_wall_time_whatever_the_market_clock_did(replay: None) -> None:
    wall_start = datetime(2026, 3, 2, 1, 35, tzinfo=UTC)
    wall_now = wall_start + timedelta(minutes=9)
    assert uptime(wall_start, wall_now) == timedelta(minutes=9)
    # nine real minutes at 60x are nine market hours: the stop message still says 9m
    event = shutdown_event(MARKET + timedelta(hours=9), balance=1000.0, started=wall_start, now_wall=wall_now)
    text = shutdown(event)
    assert "Uptime: <code>9m</code>" in text and "market replay 60×" in text
