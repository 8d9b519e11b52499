"""The flash-crash guard's window (trading/flash_crash.py): one move, read live (`move_pct`), for one
more tick (`move_with`, the quiet-tick shortcut) and conservatively for a run of ticks (`could_reach`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np

from trading.flash_crash import TickWindow, move_pct

T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)


def test_move_is_the_range_over_the_low_and_zero_without_two_prices() -> None:
    assert move_pct([]) == 0.0 and move_pct([3000.0]) == 0.0
    assert move_pct([3000.0, 3075.0, 3030.0]) == (3075.0 - 3000.0) / 3000.0 * 100
    assert move_pct([0.0, 5.0]) == 0.0  # a low at 0 is no price


def test_add_keeps_the_window_and_move_with_leaves_it_as_it_is() -> None:
    rng = random.Random(7)
    window, mirror = TickWindow(), TickWindow()
    moment = T0
    for _ in range(400):
        moment += timedelta(seconds=rng.choice([0.3, 1, 7, 40]))  # ticks in time order, as a feed gives them
        mid = 3000 + rng.uniform(-80, 80)
        before = list(window.ticks)
        predicted = window.move_with(mid, moment - timedelta(seconds=60))
        assert list(window.ticks) == before
        window.add(moment, mid, 60)
        assert predicted == window.move_pct()
        assert all(t >= moment - timedelta(seconds=60) for t, _ in window.ticks)
        mirror.append(moment, mid)
    mirror.trim(T0 + timedelta(days=10))
    assert len(mirror) == 0


def test_could_reach_is_conservative() -> None:
    """False only when no tick of the run, added one by one, would show the threshold's move."""
    rng = random.Random(3)
    for _ in range(300):
        window = TickWindow()
        for k in range(rng.randrange(0, 5)):
            window.add(T0 + timedelta(seconds=k), 3000 + rng.uniform(-40, 40), 60)
        start = T0 + timedelta(seconds=10)
        mids = np.array([3000 + rng.uniform(-60, 60) for _ in range(rng.randrange(1, 8))])
        pct = rng.choice([0.5, 1.5, 2.5, 4.0])
        probe = TickWindow()
        for moment, mid in window.ticks:
            probe.append(moment, mid)
        reached = False
        for k, mid in enumerate(mids.tolist()):
            probe.add(start + timedelta(seconds=k), mid, 60)
            reached = reached or probe.move_pct() >= pct
        if reached:
            assert window.could_reach(mids, mids, pct)  # quotes whose mids are `mids`


def test_kept_low_and_high_follow_every_change_of_the_window() -> None:
    """The move read from the kept low and high is the move over the ticks kept, whatever the order of
    appends, trims (the quiet-tick shortcut's), adds and clears, equal and out-of-order prices too."""
    rng = random.Random(11)
    window = TickWindow()
    moment = T0
    for _ in range(3000):
        op = rng.random()
        moment += timedelta(seconds=rng.choice([0, 0.5, 1, 5, 30]))
        mid = rng.choice([3000.0, 3000.5, 2999.5]) if rng.random() < 0.3 else 3000 + rng.uniform(-50, 50)
        if op < 0.45:
            window.add(moment, mid, rng.choice([30, 60]))
        elif op < 0.8:
            window.append(moment, mid)
        elif op < 0.98:
            window.trim(moment - timedelta(seconds=rng.choice([0, 10, 45, 90])))
        else:
            window.clear()
        assert window.move_pct() == move_pct(p for _, p in window.ticks)
