"""`open_market_minutes` (the step's clock, `market_status` asked once a session) gives exactly the
floats `market_minutes` gives, whatever order the instants come in: across breaks, weekends, DST."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import trading.position_watch as position_watch
from trading.position_watch import market_minutes, open_market_minutes

T0 = datetime(2024, 3, 1, tzinfo=UTC)  # New York's spring switch (10 March) and a month around it


def _instants(rng: random.Random) -> list[datetime]:
    """Runs of steps seconds to hours apart (as a backtest's steps come), and jumps back and forth."""
    out, now = [], T0
    for _ in range(6000):
        gap = rng.choice([0.001, 0.5, 1, 1, 7, 60, 61, 600, 3599, 3600, 3601, 14_400, 86_400])
        now += timedelta(seconds=gap * rng.random() if rng.random() < 0.3 else gap)
        if rng.random() < 0.01:
            now -= timedelta(days=rng.uniform(0, 3))
        out.append(now)
    return out


def test_open_market_minutes_are_market_minutes_exactly() -> None:
    position_watch._session = position_watch._OpenSession(float("inf"), -float("inf"), -float("inf"))
    rng = random.Random(11)
    checked = closed = 0
    for now in _instants(rng):
        got, want = open_market_minutes(now), market_minutes(now)
        assert got == want, (now, got, want)
        closed += want[0] is None
        checked += 1
    assert checked == 6000 and 0 < closed < checked  # both open and closed instants seen


def test_instants_at_the_closes_themselves() -> None:
    # the second before and at the daily break (17:00 New York) and the weekly close, and just after
    for base in (  # 16:59:59 New York: a Tuesday, a Friday
        datetime(2024, 3, 5, 21, 59, 59, tzinfo=UTC),
        datetime(2024, 3, 8, 21, 59, 59, tzinfo=UTC),
    ):
        for ms in (0, 500, 999, 1000, 1001, 60_000, 3_600_000, 3_660_000):
            now = base + timedelta(milliseconds=ms)
            assert open_market_minutes(now) == market_minutes(now), now
