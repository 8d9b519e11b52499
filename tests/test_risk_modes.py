"""Risk-mode transitions as a table, limits from the live balance, WIB day roll."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from trading.risk import modes
from trading.risk.modes import (
    RiskLimits,
    RiskMode,
    RiskState,
    approved_reset,
    automatic_mode,
    effective_mode,
    record_close,
    roll_day,
    start_cooldown,
)

NOW = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)  # 12:00 WIB Monday
LIMITS = RiskLimits()  # 1% / 3% daily / 10% total / recovery after 3 losses / protected at 80%


def state(**kw) -> RiskState:
    return replace(RiskState.fresh(10_000.0, NOW), **kw)


# (description, state overrides, balance, expected mode)
TABLE = [
    ("fresh account", {}, 10_000, RiskMode.NORMAL),
    ("two losses", {"consecutive_losses": 2}, 10_000, RiskMode.NORMAL),
    ("three losses", {"consecutive_losses": 3}, 10_000, RiskMode.RECOVERY),
    ("79% of daily", {"daily_realized": -237.0}, 9_763, RiskMode.NORMAL),
    ("80% of daily", {"daily_realized": -240.0}, 9_760, RiskMode.PROTECTED),
    (
        "PROTECTED beats RECOVERY",
        {"daily_realized": -250.0, "consecutive_losses": 4},
        9_750,
        RiskMode.PROTECTED,
    ),
    ("daily limit", {"daily_realized": -300.0}, 9_700, RiskMode.STOPPED),
    ("daily stop flag", {"daily_stop": True}, 10_000, RiskMode.STOPPED),
    ("80% of total", {"reference_balance": 10_000}, 9_200, RiskMode.PROTECTED),
    ("total limit", {}, 9_000, RiskMode.STOPPED),
    ("total stop flag", {"total_stop": True}, 12_000, RiskMode.STOPPED),
    ("cooldown", {"cooldown_until": NOW + timedelta(minutes=5)}, 10_000, RiskMode.COOLDOWN),
    ("cooldown over", {"cooldown_until": NOW - timedelta(seconds=1)}, 10_000, RiskMode.NORMAL),
    (
        "STOPPED beats COOLDOWN",
        {"cooldown_until": NOW + timedelta(minutes=5), "daily_stop": True},
        10_000,
        RiskMode.STOPPED,
    ),
    (
        "COOLDOWN beats PROTECTED",
        {"cooldown_until": NOW + timedelta(minutes=5), "daily_realized": -250.0},
        9_750,
        RiskMode.COOLDOWN,
    ),
    ("profits reduce total loss", {"reference_balance": 10_000}, 10_500, RiskMode.NORMAL),
]


@pytest.mark.parametrize(("desc", "overrides", "balance", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_mode_table(desc, overrides, balance, expected):
    assert automatic_mode(state(**overrides), LIMITS, balance, NOW).mode is expected


def test_limits_follow_live_balance_not_configured_capital():
    small = RiskState.fresh(2_000.0, NOW)
    # 3% of 2,000 = 60
    assert automatic_mode(replace(small, daily_realized=-59.0), LIMITS, 1_941, NOW).mode is RiskMode.PROTECTED
    assert automatic_mode(replace(small, daily_realized=-60.0), LIMITS, 1_940, NOW).mode is RiskMode.STOPPED


def test_manual_floor_only_makes_safer():
    s = state(manual_floor=RiskMode.PROTECTED)
    assert effective_mode(s, LIMITS, 10_000, NOW).mode is RiskMode.PROTECTED
    s = state(manual_floor=RiskMode.RECOVERY, daily_stop=True)
    assert effective_mode(s, LIMITS, 10_000, NOW).mode is RiskMode.STOPPED


def test_record_close_counts_streak_and_sets_stops():
    s = state()
    for _ in range(3):
        s = record_close(s, LIMITS, -20.0, 10_000 + s.daily_realized - 20.0, NOW)
    assert s.consecutive_losses == 3 and s.daily_trades == 3
    s = record_close(s, LIMITS, 0.0, 9_940, NOW)  # break-even resets the streak
    assert s.consecutive_losses == 0
    s = record_close(s, LIMITS, -300.0, 9_640, NOW)
    assert s.daily_stop
    assert automatic_mode(s, LIMITS, 9_640, NOW).mode is RiskMode.STOPPED


def test_daily_stop_clears_at_wib_midnight_but_total_persists():
    s = state(daily_stop=True, daily_realized=-300.0, consecutive_losses=5)
    before_midnight = datetime(2025, 6, 2, 16, 59, tzinfo=UTC)  # 23:59 WIB
    assert roll_day(s, before_midnight, 9_700) is s
    after = roll_day(s, datetime(2025, 6, 2, 17, 0, tzinfo=UTC), 9_700)  # 00:00 WIB
    assert not after.daily_stop and after.daily_realized == 0 and after.consecutive_losses == 0
    assert after.day_start_balance == 9_700 and after.reference_balance == 10_000
    total = roll_day(state(total_stop=True), datetime(2025, 6, 3, 17, 0, tzinfo=UTC), 9_000)
    assert total.total_stop


def test_a_close_counts_in_the_wib_day_it_closed_not_the_day_it_is_booked():
    s = state(daily_realized=-100.0, daily_trades=2, consecutive_losses=2)
    stop_hit = datetime(2025, 6, 2, 16, 59, 50, tzinfo=UTC)  # 23:59:50 WIB Monday
    seen = datetime(2025, 6, 2, 17, 0, 1, tzinfo=UTC)  # 00:00:01 WIB Tuesday
    late = record_close(s, LIMITS, -40.0, 9_860.0, seen, closed_at=stop_hit)
    # Tuesday starts with the loss already in the balance and nothing in its own counters
    assert late.day == date(2025, 6, 3)
    assert (late.daily_realized, late.daily_trades, late.daily_wins, late.consecutive_losses) == (
        0.0,
        0,
        0,
        0,
    )
    assert late.day_start_balance == 9_860.0 and late.reference_balance == 10_000
    assert not late.daily_stop
    # the same close booked on its own day counts in that day
    on_time = record_close(s, LIMITS, -40.0, 9_860.0, stop_hit, closed_at=stop_hit)
    assert (on_time.daily_realized, on_time.daily_trades, on_time.consecutive_losses) == (-140.0, 3, 3)
    # a close stamped after the booking clock (a broker clock ahead) counts today; no deal time counts today
    ahead = record_close(s, LIMITS, -40.0, 9_860.0, NOW, closed_at=NOW + timedelta(minutes=2))
    assert ahead.daily_trades == 3
    assert record_close(s, LIMITS, -40.0, 9_860.0, NOW).daily_trades == 3


def test_a_close_from_an_earlier_day_still_counts_in_the_total_loss():
    s = state()
    closed = NOW - timedelta(days=1)
    stopped = record_close(s, LIMITS, -1_000.0, 9_000.0, NOW, closed_at=closed)
    assert stopped.daily_trades == 0 and stopped.daily_realized == 0.0
    assert stopped.total_stop  # 10 % of 10,000 lost: the total limit holds whatever the day
    assert automatic_mode(stopped, LIMITS, 9_000.0, NOW).mode is RiskMode.STOPPED


def test_a_corrected_close_moves_only_the_figures_of_the_day_it_was_counted_in():
    from trading.risk.modes import correct_counted_close

    s = state(daily_realized=-30.0, daily_trades=2, daily_wins=1)
    # booked today at +10 (an estimate), really -5 today: the difference, and the win taken back
    fixed = correct_counted_close(s, 10.0, NOW, -5.0, NOW - timedelta(seconds=2))
    assert (fixed.daily_realized, fixed.daily_trades, fixed.daily_wins) == (-45.0, 2, 0)
    # booked just after midnight, really closed at 23:59:59 WIB the day before: out of today's figures
    midnight = datetime(2025, 6, 1, 17, 0, tzinfo=UTC)  # 00:00 WIB Monday 2 June
    gone = correct_counted_close(
        s, 10.0, midnight + timedelta(seconds=1), -5.0, midnight - timedelta(seconds=1)
    )
    assert (gone.daily_realized, gone.daily_trades, gone.daily_wins) == (-40.0, 1, 0)
    # booked on an earlier day (before a restart, say): today's figures never had it
    assert correct_counted_close(s, 10.0, NOW - timedelta(days=1), -5.0, NOW - timedelta(days=1)) is s


def test_cooldown_start_and_approved_reset():
    s = start_cooldown(state(), LIMITS, NOW, "flash crash")
    assert s.cooldown_until == NOW + timedelta(minutes=60)
    assert automatic_mode(s, LIMITS, 10_000, NOW).reason.startswith("flash crash")
    stopped = state(total_stop=True)
    reset = approved_reset(stopped, 8_900, NOW)
    assert automatic_mode(reset, LIMITS, 8_900, NOW).mode is RiskMode.NORMAL
    assert reset.reference_balance == 8_900


def test_daily_override_lasts_only_that_day():
    s = approved_reset(state(daily_stop=True, daily_realized=-300.0), 9_700, NOW)
    assert automatic_mode(s, LIMITS, 9_700, NOW).mode is not RiskMode.STOPPED


@pytest.mark.parametrize(
    "bad",
    [
        dict(risk_per_trade_pct=0),
        dict(daily_loss_pct=-1),
        dict(max_positions=0),
        dict(min_lot=0.05, max_lot=0.01),
        dict(protected_at=1.0),
    ],
)
def test_invalid_limits_refused(bad):
    with pytest.raises(ValueError):
        RiskLimits(**bad)


def test_riskier_than_lists_loosened_fields():
    base = RiskLimits()
    assert RiskLimits(risk_per_trade_pct=2.0).riskier_than(base) == ["risk_per_trade_pct"]
    assert RiskLimits(risk_per_trade_pct=0.5).riskier_than(base) == []
    assert RiskLimits(cooldown_minutes=10).riskier_than(base) == ["cooldown_minutes"]


def test_kept_mode_is_the_mode_computed_afresh():
    """`effective_mode` keeps its last decision made outside a cooldown: asked in any order about the
    same or other states, limits, balances and times (inside, at the end of and after a cooldown, with a
    floor), it answers what the rules give then."""
    rng = random.Random(9)
    states = [state(**overrides) for _desc, overrides, _balance, _mode in TABLE]
    states += [replace(s, manual_floor=RiskMode.PROTECTED) for s in states[:3]]
    limits = [LIMITS, RiskLimits(daily_loss_pct=5.0), RiskLimits()]
    for _ in range(3000):
        s, lim = rng.choice(states), rng.choice(limits)
        balance = rng.choice([9_000.0, 9_750.0, 10_000.0, 12_000.0, -0.0])
        now = NOW + timedelta(minutes=rng.choice([-10, 0, 4, 5, 6, 30]))
        expected = modes._effective_mode(s, lim, balance, now)
        assert effective_mode(s, lim, balance, now) == expected


def test_a_corrected_close_corrects_the_loss_streak() -> None:
    from trading.risk.modes import correct_counted_close, corrected_streak

    # the last three closes were losses: the middle one (one close after it) was really a win
    assert corrected_streak(3, 1, -5.0, 2.0) == 1
    assert corrected_streak(3, 0, -5.0, 2.0) == 0  # the last one: no run left
    assert corrected_streak(3, 1, -5.0, -7.0) == 3  # a loss all the same
    assert corrected_streak(3, 1, -5.0, None) == 2  # taken out of today's figures: one loss fewer
    assert corrected_streak(3, 4, -5.0, 2.0) == 3  # before the run (a win after it broke it already)
    # the win the run of two started after was really a loss: it joins the run
    assert corrected_streak(2, 2, 1.0, -1.0) == 3
    assert corrected_streak(2, 3, 1.0, -1.0) == 2  # another win came after it
    assert corrected_streak(2, 2, 1.0, 4.0) == 2
    assert corrected_streak(2, None, -5.0, 2.0) == 2  # a hand close never moved the streak

    s = state(daily_realized=-30.0, daily_trades=2, consecutive_losses=2)
    fixed = correct_counted_close(s, -10.0, NOW, 5.0, NOW - timedelta(seconds=2), closes_after=0)
    assert (fixed.daily_realized, fixed.consecutive_losses) == (-15.0, 0)
    assert correct_counted_close(s, -10.0, NOW, 5.0, NOW).consecutive_losses == 2  # not known: kept
    # booked on an earlier day: today's streak never had it
    earlier = NOW - timedelta(days=1)
    assert correct_counted_close(s, -10.0, earlier, 5.0, earlier, closes_after=0) is s
