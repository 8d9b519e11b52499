"""The floors a stretch band reads of the samples it takes (`lowest_momentum`, `highest_stall_count`)
are the lowest momentum and the highest stall count the tracker shows as it takes them one by one."""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, datetime

import pytest

from trading.parameters import StrategyParams
from trading.tracker import PositionTracker, highest_stall_count, lowest_momentum, momentum

P = StrategyParams()


def _case(rng: random.Random) -> tuple[PositionTracker, list[float]]:
    tracker = PositionTracker(1)
    flat = rng.uniform(-12.0, 2.0)  # runs that sit in a flat loss count stalls
    for _ in range(rng.randint(0, 35)):
        tracker.profits.append(round(flat + rng.uniform(-0.2, 0.2), 2) if rng.random() < 0.9 else 0.0)
    tracker.stall_count = rng.randint(0, 4)
    jumps = (1.0,) * 9 + (30.0,)
    more = [round(flat + rng.uniform(-0.2, 0.2) * rng.choice(jumps), 2) for _ in range(rng.randint(0, 20))]
    return tracker, more


@pytest.mark.parametrize("seed", range(3))
def test_the_floors_are_those_the_samples_bring_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    stalls = 0
    for _ in range(3000):
        tracker, more = _case(rng)
        scale = rng.choice([0.0, -1.0, 0.5, 2.0, 25.0])
        unit = rng.choice([0.5, 2.0, 4.0])
        seen = PositionTracker(1, deque(tracker.profits, maxlen=30), stall_count=tracker.stall_count)
        momenta, counts = [momentum(seen.profits, scale)], [seen.stall_count]
        for profit in more:
            seen._sample(profit, None, P, unit)
            momenta.append(momentum(seen.profits, scale))
            counts.append(seen.stall_count)
        assert repr(lowest_momentum(tracker.profits, more, scale)) == repr(min(momenta))
        assert highest_stall_count(tracker, more, P, unit) == max(counts)
        stalls += max(counts) > tracker.stall_count
    assert stalls > 50  # the samples counted stalls in some cases


@pytest.mark.parametrize("seed", range(3))
def test_samples_taken_at_once_leave_the_tracker_as_taken_one_by_one(seed: int) -> None:
    """`take_samples` (with its shortcut when no sample can count a stall or a warning) against
    `_sample` on each; with and without a model, the samples in and out of a stalling loss."""
    rng = random.Random(seed)
    shortcuts = 0
    for _ in range(2000):
        tracker, more = _case(rng)
        tracker.peak_profit = rng.choice([0.0, max([0.0, *tracker.profits])])
        ml = rng.choice([None, None, 0.3, 0.6, 0.9])
        unit = rng.choice([0.5, 2.0, 4.0])
        seen = PositionTracker(1, deque(tracker.profits, maxlen=30), stall_count=tracker.stall_count)
        seen.peak_profit, seen.last_sample = tracker.peak_profit, tracker.last_sample
        for profit in more:
            seen.peak_profit = max(seen.peak_profit, profit)
            seen._sample(profit, ml, P, unit)
        last = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
        if more:
            seen.last_sample = last
        tracker.take_samples(more, last, ml, P, unit)
        assert repr(tracker) == repr(seen)
        shortcuts += ml is None and bool(more) and min(more) >= -P.stall_loss_atr * unit
    assert shortcuts > 100
