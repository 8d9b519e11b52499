"""The loop's phase timer (/status, /health): a block is timed also when it raises; a timer turned off
(a backtest's engine) keeps nothing, and a block under it still runs and raises as before."""

from __future__ import annotations

import pytest

from trading.timing import WARMUP_SAMPLES, PhaseTimer


def test_a_phase_is_timed_after_its_warm_up_also_when_it_raises() -> None:
    timer = PhaseTimer()
    for _ in range(WARMUP_SAMPLES):
        with timer.phase("analysis"):
            pass
    assert timer.warming_up() == {"analysis"}
    with pytest.raises(RuntimeError), timer.phase("analysis"):
        raise RuntimeError("analysis failed")
    assert len(timer.samples("analysis")) == 1 and timer.samples("analysis")[0] >= 0.0
    assert set(timer.summary()) == {"analysis"}


def test_a_timer_turned_off_keeps_nothing() -> None:
    timer = PhaseTimer(enabled=False)
    ran = []
    for _ in range(WARMUP_SAMPLES + 3):
        with timer.phase("entry"):
            ran.append(1)
    with pytest.raises(ValueError), timer.phase("entry"):
        raise ValueError("still raised")
    assert len(ran) == WARMUP_SAMPLES + 3
    assert timer.samples("entry") == () and timer.summary() == {} and timer.warming_up() == set()
