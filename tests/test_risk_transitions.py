"""Risk modes (decision 5) as tables: the mode the counters give, and the mode after each event.

Account: 10,000 at the start of the WIB day; default limits (daily 3 % = $300, total 10 % = $1,000,
PROTECTED at 80 %, RECOVERY after 3 losses, COOLDOWN 60 min). NOW is 12:00 WIB on 2025-06-02.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from trading.risk.modes import (
    RiskLimits,
    RiskMode,
    RiskState,
    approved_reset,
    effective_mode,
    record_close,
    roll_day,
    start_cooldown,
)

NOW = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)  # 12:00 WIB
TODAY = date(2025, 6, 2)
YESTERDAY = date(2025, 6, 1)
MIDNIGHT_WIB = datetime(2025, 6, 2, 17, 0, tzinfo=UTC)  # 00:00 WIB 2025-06-03
LIMITS = RiskLimits()


def state(**kw: object) -> RiskState:
    return replace(RiskState.fresh(10_000.0, NOW), **kw)  # type: ignore[arg-type]


S, M = NOW + timedelta(seconds=1), NOW + timedelta(minutes=5)

# (id, state overrides, balance, expected mode, fragment of the reason)
MODE_TABLE = [
    ("fresh", {}, 10_000, RiskMode.NORMAL, "within limits"),
    ("two losses", {"consecutive_losses": 2}, 10_000, RiskMode.NORMAL, "within limits"),
    ("three losses", {"consecutive_losses": 3}, 10_000, RiskMode.RECOVERY, "3 losses in a row"),
    ("five losses", {"consecutive_losses": 5}, 10_000, RiskMode.RECOVERY, "5 losses in a row"),
    ("79% of daily", {"daily_realized": -237.0}, 9_763, RiskMode.NORMAL, "within limits"),
    ("80% of daily", {"daily_realized": -240.0}, 9_760, RiskMode.PROTECTED, "80% of the daily loss limit"),
    ("80% of total", {}, 9_200, RiskMode.PROTECTED, "80% of the total loss limit"),
    ("daily profit is no loss", {"daily_realized": 400.0}, 10_400, RiskMode.NORMAL, "within limits"),
    ("profits reduce the total loss", {"reference_balance": 11_000.0}, 10_500, RiskMode.NORMAL, "within"),
    ("daily limit reached", {"daily_realized": -300.0}, 9_700, RiskMode.STOPPED, "daily loss $300.00"),
    ("daily stop flag", {"daily_stop": True}, 10_000, RiskMode.STOPPED, "daily loss"),
    ("total limit reached", {}, 9_000, RiskMode.STOPPED, "total loss $1,000.00 reached the limit $1,000.00"),
    ("total stop flag survives profits", {"total_stop": True}, 12_000, RiskMode.STOPPED, "total loss"),
    (
        "total reported before daily",
        {"daily_stop": True, "total_stop": True},
        10_000,
        RiskMode.STOPPED,
        "total",
    ),
    (
        "cooldown",
        {"cooldown_until": M, "cooldown_reason": "flash crash"},
        10_000,
        RiskMode.COOLDOWN,
        "flash crash (5 min left)",
    ),
    ("cooldown's last second", {"cooldown_until": S}, 10_000, RiskMode.COOLDOWN, "cooldown (1 min left)"),
    ("cooldown expired at its end", {"cooldown_until": NOW}, 10_000, RiskMode.NORMAL, "within limits"),
    (
        "cooldown expired, streak shows",
        {"cooldown_until": NOW, "consecutive_losses": 3},
        10_000,
        RiskMode.RECOVERY,
        "3 losses",
    ),
    ("STOPPED beats COOLDOWN", {"cooldown_until": M, "daily_stop": True}, 10_000, RiskMode.STOPPED, "daily"),
    (
        "COOLDOWN beats PROTECTED",
        {"cooldown_until": M, "daily_realized": -250.0},
        9_750,
        RiskMode.COOLDOWN,
        "min left",
    ),
    (
        "PROTECTED beats RECOVERY",
        {"daily_realized": -250.0, "consecutive_losses": 4},
        9_750,
        RiskMode.PROTECTED,
        "83% of the daily",
    ),
    (
        "manual floor PROTECTED",
        {"manual_floor": RiskMode.PROTECTED},
        10_000,
        RiskMode.PROTECTED,
        "set by the user",
    ),
    ("manual floor STOPPED", {"manual_floor": RiskMode.STOPPED}, 10_000, RiskMode.STOPPED, "set by the user"),
    (
        "manual floor COOLDOWN",
        {"manual_floor": RiskMode.COOLDOWN},
        10_000,
        RiskMode.COOLDOWN,
        "set by the user",
    ),
    (
        "floor RECOVERY under automatic PROTECTED",
        {"manual_floor": RiskMode.RECOVERY, "daily_realized": -250.0},
        9_750,
        RiskMode.PROTECTED,
        "of the daily",
    ),
    (
        "floor NORMAL never loosens",
        {"manual_floor": RiskMode.NORMAL, "consecutive_losses": 3},
        10_000,
        RiskMode.RECOVERY,
        "3 losses",
    ),
    (
        "floor PROTECTED under daily STOPPED",
        {"manual_floor": RiskMode.PROTECTED, "daily_stop": True},
        10_000,
        RiskMode.STOPPED,
        "daily loss",
    ),
    (
        "override today lifts the daily stop",
        {"daily_stop": True, "stop_override_day": TODAY},
        10_000,
        RiskMode.NORMAL,
        "within limits",
    ),
    (
        "override today, loss still at the limit",
        {"daily_stop": True, "daily_realized": -300.0, "stop_override_day": TODAY},
        9_700,
        RiskMode.PROTECTED,
        "100% of the daily",
    ),
    (
        "yesterday's override does nothing",
        {"daily_stop": True, "stop_override_day": YESTERDAY},
        10_000,
        RiskMode.STOPPED,
        "daily loss",
    ),
    (
        "override never lifts a total stop",
        {"total_stop": True, "stop_override_day": TODAY},
        10_000,
        RiskMode.STOPPED,
        "total loss",
    ),
    (
        "override does not skip a cooldown",
        {"daily_stop": True, "stop_override_day": TODAY, "cooldown_until": M},
        10_000,
        RiskMode.COOLDOWN,
        "min left",
    ),
    (
        "limits follow a small live balance",
        {"day_start_balance": 2_000.0, "reference_balance": 2_000.0, "daily_realized": -60.0},
        1_940,
        RiskMode.STOPPED,
        "limit $60.00",
    ),
    ("same loss is fine on a big balance", {"daily_realized": -60.0}, 9_940, RiskMode.NORMAL, "within"),
]


@pytest.mark.parametrize(
    ("overrides", "balance", "expected", "fragment"),
    [t[1:] for t in MODE_TABLE],
    ids=[t[0] for t in MODE_TABLE],
)
def test_mode_table(overrides: dict, balance: float, expected: RiskMode, fragment: str) -> None:
    got = effective_mode(state(**overrides), LIMITS, balance, NOW)
    assert got.mode is expected, got
    assert fragment in got.reason, got.reason


# ---------------------------------------------------------------------------------------- transitions

Step = Callable[[RiskState, float], tuple[RiskState, float, datetime]]


def close(profit: float, at: datetime = NOW) -> Step:
    def step(s: RiskState, balance: float) -> tuple[RiskState, float, datetime]:
        return record_close(s, LIMITS, profit, balance + profit, at), balance + profit, at

    return step


def roll(at: datetime) -> Step:
    return lambda s, balance: (roll_day(s, at, balance), balance, at)


def cooldown(reason: str = "daily limit close") -> Step:
    return lambda s, balance: (start_cooldown(s, LIMITS, NOW, reason), balance, NOW)


def later(minutes: float) -> Step:
    at = NOW + timedelta(minutes=minutes)
    return lambda s, balance: (roll_day(s, at, balance), balance, at)


def reset(at: datetime = NOW) -> Step:
    return lambda s, balance: (approved_reset(s, balance, at), balance, at)


def chain(*steps: Step) -> Step:
    def run(s: RiskState, balance: float) -> tuple[RiskState, float, datetime]:
        at = NOW
        for step in steps:
            s, balance, at = step(s, balance)
        return s, balance, at

    return run


# (id, state overrides, balance, step, expected mode, reason fragment)
TRANSITIONS = [
    ("third loss -> RECOVERY", {"consecutive_losses": 2}, 10_000, close(-20), RiskMode.RECOVERY, "3 losses"),
    ("a win leaves RECOVERY", {"consecutive_losses": 3}, 10_000, close(5), RiskMode.NORMAL, "within"),
    ("break-even leaves RECOVERY", {"consecutive_losses": 3}, 10_000, close(0), RiskMode.NORMAL, "within"),
    ("loss to 80 % -> PROTECTED", {"daily_realized": -200.0}, 9_800, close(-40), RiskMode.PROTECTED, "80%"),
    (
        "loss to the daily limit -> STOPPED",
        {"daily_realized": -250.0},
        9_750,
        close(-50),
        RiskMode.STOPPED,
        "daily loss $300.00",
    ),
    (
        "a win back under 80 % leaves PROTECTED",
        {"daily_realized": -250.0},
        9_750,
        close(100),
        RiskMode.NORMAL,
        "within",
    ),
    (
        "loss to the total limit -> STOPPED",
        {"reference_balance": 10_000.0},
        9_050,
        close(-60),
        RiskMode.STOPPED,
        "total loss",
    ),
    (
        "total STOPPED is not cleared by a win",
        {"total_stop": True},
        9_000,
        close(500),
        RiskMode.STOPPED,
        "total",
    ),
    (
        "23:59 WIB keeps the daily stop",
        {"daily_stop": True, "daily_realized": -300.0},
        9_700,
        roll(MIDNIGHT_WIB - timedelta(seconds=1)),
        RiskMode.STOPPED,
        "daily",
    ),
    (
        "00:00 WIB clears the daily stop",
        {"daily_stop": True, "daily_realized": -300.0},
        9_700,
        roll(MIDNIGHT_WIB),
        RiskMode.NORMAL,
        "within",
    ),
    (
        "00:00 WIB clears the loss streak",
        {"consecutive_losses": 4},
        10_000,
        roll(MIDNIGHT_WIB),
        RiskMode.NORMAL,
        "within",
    ),
    (
        "00:00 WIB keeps the total stop",
        {"total_stop": True},
        9_000,
        roll(MIDNIGHT_WIB),
        RiskMode.STOPPED,
        "total",
    ),
    (
        "the next day's limit is from the new balance",
        {"daily_realized": -290.0},
        9_710,
        chain(roll(MIDNIGHT_WIB), close(-240, MIDNIGHT_WIB)),
        RiskMode.PROTECTED,
        "daily",
    ),
    ("limit-close -> COOLDOWN", {}, 10_000, cooldown(), RiskMode.COOLDOWN, "daily limit close (60 min left)"),
    (
        "59 min later still COOLDOWN",
        {},
        10_000,
        chain(cooldown(), later(59)),
        RiskMode.COOLDOWN,
        "1 min left",
    ),
    (
        "60 min later the cooldown is over",
        {},
        10_000,
        chain(cooldown(), later(60)),
        RiskMode.NORMAL,
        "within",
    ),
    (
        "a shorter cooldown never cuts a longer one",
        {"cooldown_until": NOW + timedelta(hours=3)},
        10_000,
        cooldown("flash crash"),
        RiskMode.COOLDOWN,
        "180 min left",
    ),
    (
        "approved reset leaves a total STOPPED",
        {"total_stop": True},
        8_900,
        reset(),
        RiskMode.NORMAL,
        "within",
    ),
    (
        "approved reset over a hit daily limit lasts the day",
        {"daily_stop": True, "daily_realized": -300.0},
        9_700,
        reset(),
        RiskMode.PROTECTED,
        "100% of the daily",
    ),
    (
        "... and the next day the daily limit counts again",
        {"daily_stop": True, "daily_realized": -300.0},
        9_700,
        chain(reset(), roll(MIDNIGHT_WIB), close(-300, MIDNIGHT_WIB)),
        RiskMode.STOPPED,
        "daily loss",
    ),
    (
        "approved total reset keeps today's daily limit when it was not hit",
        {"total_stop": True, "daily_realized": -100.0},
        9_000,
        chain(reset(), close(-200)),
        RiskMode.STOPPED,
        "daily loss $300.00",
    ),
    (
        "approved reset clears a cooldown",
        {"total_stop": True, "cooldown_until": M},
        9_000,
        reset(),
        RiskMode.NORMAL,
        "within",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "balance", "step", "expected", "fragment"),
    [t[1:] for t in TRANSITIONS],
    ids=[t[0] for t in TRANSITIONS],
)
def test_transition_table(
    overrides: dict, balance: float, step: Step, expected: RiskMode, fragment: str
) -> None:
    s, balance_after, at = step(state(**overrides), balance)
    got = effective_mode(s, LIMITS, balance_after, at)
    assert got.mode is expected, got
    assert fragment in got.reason, got.reason
