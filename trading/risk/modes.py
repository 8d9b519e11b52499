"""Risk modes and the account's loss limits (decisions 4, 5, 7).

Modes from safest to riskiest: STOPPED, COOLDOWN, PROTECTED, RECOVERY, NORMAL. The automatic
mode is a pure function of the counters; a user may set a safer *floor* at once, and anything
that loosens (a riskier floor, leaving STOPPED early) goes through an approval elsewhere.
Limits follow the live balance: the daily limit is a percentage of the balance at the start of
the WIB day; the total limit a percentage of the reference balance (set at first start and on an
approved reset; profits reduce the total loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypedDict

from trading.timezones import wib_date


class RiskMode(StrEnum):
    NORMAL = "NORMAL"
    RECOVERY = "RECOVERY"
    PROTECTED = "PROTECTED"
    COOLDOWN = "COOLDOWN"
    STOPPED = "STOPPED"

    @property
    def safety(self) -> int:
        """Higher is safer."""
        return _SAFETY[self]

    @property
    def allows_entries(self) -> bool:
        return self in (RiskMode.NORMAL, RiskMode.RECOVERY, RiskMode.PROTECTED)

    @property
    def max_positions_cap(self) -> int | None:
        """RECOVERY and PROTECTED trade one position at the minimum lot."""
        return 1 if self in (RiskMode.RECOVERY, RiskMode.PROTECTED) else None


_SAFETY = {
    RiskMode.NORMAL: 0,
    RiskMode.RECOVERY: 1,
    RiskMode.PROTECTED: 2,
    RiskMode.COOLDOWN: 3,
    RiskMode.STOPPED: 4,
}


def safer(a: RiskMode, b: RiskMode) -> RiskMode:
    return a if a.safety >= b.safety else b


class FieldBounds(TypedDict, total=False):
    """A range as pydantic `Field` keyword arguments (typed, so a type checker can match them)."""

    gt: float
    ge: float
    le: float


@dataclass(frozen=True, slots=True)
class Bound:
    """A risk limit's allowed range: above `low` (from `low` with `low_inclusive`) and at most `high`."""

    low: float
    high: float
    low_inclusive: bool = False

    def holds(self, value: float) -> bool:
        return (self.low <= value if self.low_inclusive else self.low < value) and value <= self.high

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" if self.low_inclusive else f"in ({self.low:g}, {self.high:g}]"

    def field_args(self) -> FieldBounds:
        """The same range as pydantic `Field` constraints (the settings read it from here)."""
        if self.low_inclusive:
            return {"ge": self.low, "le": self.high}
        return {"gt": self.low, "le": self.high}


# the one source of the limits a trader can set (settings, /risk, RiskLimits itself)
LIMIT_BOUNDS: dict[str, Bound] = {
    "risk_per_trade_pct": Bound(0, 5),
    "daily_loss_pct": Bound(0, 50),
    "total_loss_pct": Bound(0, 100),
    "max_positions": Bound(1, 20, low_inclusive=True),
}


@dataclass(frozen=True, slots=True)
class RiskLimits:
    risk_per_trade_pct: float = 1.0
    daily_loss_pct: float = 3.0
    total_loss_pct: float = 10.0
    max_positions: int = 2
    protected_at: float = 0.8  # fraction of a limit used that switches to PROTECTED
    recovery_after_losses: int = 3
    cooldown_minutes: int = 60  # COOLDOWN after a limit-close or flash crash
    min_lot: float = 0.01
    max_lot: float = 0.02

    def __post_init__(self) -> None:
        checks = [
            (bound.holds(getattr(self, name)), f"{name} must be {bound.describe()}")
            for name, bound in LIMIT_BOUNDS.items()
        ]
        checks += [
            (0 < self.protected_at < 1, "protected_at must be in (0, 1)"),
            (self.recovery_after_losses >= 1, "recovery_after_losses must be >= 1"),
            (self.cooldown_minutes >= 0, "cooldown_minutes must be >= 0"),
            (0 < self.min_lot <= self.max_lot, "need 0 < min_lot <= max_lot"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def riskier_than(self, other: RiskLimits) -> list[str]:
        """Names of the fields where self takes more risk than other (these need approval)."""
        out = []
        for name in ("risk_per_trade_pct", "daily_loss_pct", "total_loss_pct", "max_positions", "max_lot"):
            if getattr(self, name) > getattr(other, name):
                out.append(name)
        if self.protected_at > other.protected_at:
            out.append("protected_at")
        if self.recovery_after_losses > other.recovery_after_losses:
            out.append("recovery_after_losses")
        if self.cooldown_minutes < other.cooldown_minutes:
            out.append("cooldown_minutes")
        if self.min_lot > other.min_lot:
            out.append("min_lot")
        return out


@dataclass(frozen=True, slots=True)
class RiskState:
    """Counters that survive restarts (the journal stores them)."""

    day: date
    day_start_balance: float
    reference_balance: float  # total-loss reference
    daily_realized: float = 0.0  # net P/L of trades closed this WIB day
    daily_trades: int = 0
    daily_wins: int = 0
    consecutive_losses: int = 0
    cooldown_until: datetime | None = None
    cooldown_reason: str = ""
    daily_stop: bool = False  # daily limit hit; clears at the next WIB day
    total_stop: bool = False  # total limit hit; clears only by an approved reset
    stop_override_day: date | None = None  # approved early resume from a daily stop, for that day
    manual_floor: RiskMode = RiskMode.NORMAL
    last_entry_time: datetime | None = None

    @classmethod
    def fresh(cls, balance: float, now: datetime) -> RiskState:
        return cls(day=wib_date(now), day_start_balance=balance, reference_balance=balance)

    def daily_loss(self) -> float:
        return max(0.0, -self.daily_realized)

    def total_loss(self, balance: float) -> float:
        return max(0.0, self.reference_balance - balance)


@dataclass(frozen=True, slots=True)
class LimitUse:
    daily_loss: float
    daily_limit: float
    total_loss: float
    total_limit: float

    @property
    def daily_fraction(self) -> float:
        return self.daily_loss / self.daily_limit if self.daily_limit > 0 else 0.0

    @property
    def total_fraction(self) -> float:
        return self.total_loss / self.total_limit if self.total_limit > 0 else 0.0


def limit_use(state: RiskState, limits: RiskLimits, balance: float) -> LimitUse:
    return LimitUse(
        daily_loss=state.daily_loss(),
        daily_limit=state.day_start_balance * limits.daily_loss_pct / 100,
        total_loss=state.total_loss(balance),
        total_limit=state.reference_balance * limits.total_loss_pct / 100,
    )


@dataclass(frozen=True, slots=True)
class ModeDecision:
    mode: RiskMode
    reason: str


def automatic_mode(state: RiskState, limits: RiskLimits, balance: float, now: datetime) -> ModeDecision:
    """The mode the rules give, first match wins (decision 5)."""
    use = limit_use(state, limits, balance)
    if state.total_stop or use.total_fraction >= 1:
        return ModeDecision(
            RiskMode.STOPPED, f"total loss ${use.total_loss:,.2f} reached the limit ${use.total_limit:,.2f}"
        )
    daily_hit = state.daily_stop or use.daily_fraction >= 1
    if daily_hit and state.stop_override_day != state.day:
        return ModeDecision(
            RiskMode.STOPPED, f"daily loss ${use.daily_loss:,.2f} reached the limit ${use.daily_limit:,.2f}"
        )
    if state.cooldown_until is not None and now < state.cooldown_until:
        left = math.ceil((state.cooldown_until - now).total_seconds() / 60)
        return ModeDecision(RiskMode.COOLDOWN, f"{state.cooldown_reason or 'cooldown'} ({left} min left)")
    if use.total_fraction >= limits.protected_at or use.daily_fraction >= limits.protected_at:
        which = "daily" if use.daily_fraction >= use.total_fraction else "total"
        pct = max(use.daily_fraction, use.total_fraction) * 100
        return ModeDecision(RiskMode.PROTECTED, f"{pct:.0f}% of the {which} loss limit used")
    if state.consecutive_losses >= limits.recovery_after_losses:
        return ModeDecision(RiskMode.RECOVERY, f"{state.consecutive_losses} losses in a row")
    return ModeDecision(RiskMode.NORMAL, "within limits")


def effective_mode(state: RiskState, limits: RiskLimits, balance: float, now: datetime) -> ModeDecision:
    """The automatic mode, made safer by the user's floor when that is safer."""
    return _MODES.decide(state, limits, balance, now)


def _effective_mode(state: RiskState, limits: RiskLimits, balance: float, now: datetime) -> ModeDecision:
    auto = automatic_mode(state, limits, balance, now)
    if state.manual_floor.safety > auto.mode.safety:
        return ModeDecision(state.manual_floor, "set by the user")
    return auto


class _LastMode:
    """`effective_mode`, keeping its last decision made without reading the time: the mode reads `now`
    only inside a cooldown (its minutes left), so outside one it is the same for the same state and
    limits (frozen records: the same objects) and balance; a step and a replay's quiet-tick shortcut
    ask for it several times a bar. What it was made from and the decision are one tuple, set in one
    assignment, so a thread reading them never sees a mix."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept: tuple[RiskState, RiskLimits, float, ModeDecision] | None = None

    def decide(self, state: RiskState, limits: RiskLimits, balance: float, now: datetime) -> ModeDecision:
        timeless = state.cooldown_until is None or now >= state.cooldown_until
        kept = self.kept
        if timeless and kept is not None and kept[0] is state and kept[1] is limits and kept[2] == balance:
            return kept[3]
        decision = _effective_mode(state, limits, balance, now)
        if timeless:
            self.kept = (state, limits, balance, decision)
        return decision


_MODES = _LastMode()


def day_rolls(state: RiskState, now: datetime) -> bool:
    """Whether `now` falls on another WIB day than the state's (`roll_day` starts a new one)."""
    return wib_date(now) != state.day


def roll_day(state: RiskState, now: datetime, balance: float) -> RiskState:
    """At 00:00 WIB: clear the day's counters and the daily stop; the total loss persists."""
    if not day_rolls(state, now):
        return state
    today = wib_date(now)
    return replace(
        state,
        day=today,
        day_start_balance=balance,
        daily_realized=0.0,
        daily_trades=0,
        daily_wins=0,
        consecutive_losses=0,
        daily_stop=False,
        stop_override_day=None,
    )


def record_close(
    state: RiskState,
    limits: RiskLimits,
    profit: float,
    balance_after: float,
    now: datetime,
    by_hand: bool = False,
    closed_at: datetime | None = None,
) -> RiskState:
    """Count a closed trade in the daily/total P/L and the day's counts (bot exit, broker SL/TP and
    hand close alike: decision 7). The loss streak is the strategy's: a hand close neither lengthens
    nor resets it (`hand_close_keeps_the_streak`).

    The day's figures belong to the WIB day the trade closed (`closed_at`, the deal's time), not the
    day it is booked: a stop hit at 23:59 WIB and seen after midnight, or a close while the bot was
    down, counts in the total loss (through the balance) and never in the new day's figures."""
    if closed_on_an_earlier_day(state, now, closed_at):
        # it closed before the new day began: the day starts with it already in the balance
        new = roll_day(state, now, balance_after)
    else:
        state = roll_day(state, now, balance_after - profit)
        new = replace(
            state,
            daily_realized=state.daily_realized + profit,
            daily_trades=state.daily_trades + 1,
            daily_wins=state.daily_wins + (1 if profit > 0 else 0),
            consecutive_losses=hand_close_keeps_the_streak(state.consecutive_losses, profit, by_hand),
        )
    use = limit_use(new, limits, balance_after)
    if use.total_fraction >= 1:
        new = replace(new, total_stop=True)
    if use.daily_fraction >= 1:
        new = replace(new, daily_stop=True)
    return new


def closed_on_an_earlier_day(state: RiskState, now: datetime, closed_at: datetime | None) -> bool:
    """Whether a close belongs to a WIB day before the one counted at `now` (the state's day, or
    `now`'s once it rolls). A close stamped after `now` (a broker clock ahead) counts today."""
    if closed_at is None:
        return False
    return wib_date(closed_at) < max(state.day, wib_date(now))


def correct_counted_close(
    state: RiskState,
    booked_profit: float,
    booked_at: datetime | None,
    profit: float,
    closed_at: datetime,
) -> RiskState:
    """A close booked at `booked_profit` (an estimate, at `booked_at`) is really `profit`, closed at
    `closed_at` (its broker deals). Today's figures change only when the booking counted it today: by the
    difference when it closed today, out of them when it really closed on an earlier day (`record_close`'s
    rule). The total loss follows the balance by itself."""
    counted_today = wib_date(booked_at if booked_at is not None else closed_at) == state.day
    if not counted_today:
        return state
    if wib_date(closed_at) < state.day:
        return replace(
            state,
            daily_realized=round(state.daily_realized - booked_profit, 2),
            daily_trades=max(0, state.daily_trades - 1),
            daily_wins=max(0, state.daily_wins - (booked_profit > 0)),
        )
    return replace(
        state,
        daily_realized=round(state.daily_realized + profit - booked_profit, 2),
        daily_wins=max(0, state.daily_wins + (profit > 0) - (booked_profit > 0)),
    )


def hand_close_keeps_the_streak(losses: int, profit: float, by_hand: bool) -> int:
    """The streak after a close: +1 on a strategy loss, 0 on a strategy win; a person closing a
    position is not the strategy losing (or winning), so a hand close leaves the streak as it was."""
    if by_hand:
        return losses
    return losses + 1 if profit < 0 else 0


def start_cooldown(state: RiskState, limits: RiskLimits, now: datetime, reason: str) -> RiskState:
    until = now + timedelta(minutes=limits.cooldown_minutes)
    if state.cooldown_until is not None and state.cooldown_until > until:
        return state
    return replace(state, cooldown_until=until, cooldown_reason=reason)


def approved_reset(state: RiskState, balance: float, now: datetime) -> RiskState:
    """An approved manual reset after a stop: new reference, no stop, no cooldown. A daily stop that
    was hit is overridden for the rest of that WIB day; a daily limit not hit yet keeps counting."""
    return replace(
        state,
        reference_balance=balance,
        total_stop=False,
        daily_stop=False,
        stop_override_day=wib_date(now) if state.daily_stop else state.stop_override_day,
        cooldown_until=None,
        cooldown_reason="",
        consecutive_losses=0,
    )


_DATE_FIELDS = ("day", "stop_override_day")
_DATETIME_FIELDS = ("cooldown_until", "last_entry_time")


_STATE_FIELDS = tuple(f.name for f in fields(RiskState))
_DATED = (datetime, date)
# the limits are plain numbers: their dict is `asdict`'s without its deep copy (saved with every close)
_LIMIT_FIELDS = tuple(f.name for f in fields(RiskLimits))
if any(f.type not in ("float", "int") for f in fields(RiskLimits)):
    raise TypeError("RiskLimits holds more than numbers: risk_limits_to_dict must copy it as asdict does")


def risk_state_to_dict(state: RiskState) -> dict[str, Any]:
    """JSON-ready form for the journal's state row (dates ISO, the mode by name)."""
    out: dict[str, Any] = {}
    for name in _STATE_FIELDS:
        value = getattr(state, name)
        if isinstance(value, _DATED):
            value = value.isoformat()
        elif isinstance(value, RiskMode):
            value = value.value
        out[name] = value
    return out


def risk_limits_to_dict(limits: RiskLimits) -> dict[str, Any]:
    """`dataclasses.asdict(limits)`: each limit by name."""
    return {name: getattr(limits, name) for name in _LIMIT_FIELDS}


def risk_state_from_dict(d: dict[str, Any]) -> RiskState:
    known = {f.name for f in fields(RiskState)}
    missing = {"day", "day_start_balance", "reference_balance"} - d.keys()
    if missing:
        raise ValueError(f"stored risk state lacks {sorted(missing)}")
    kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in known}
    for name in _DATE_FIELDS:
        if kwargs.get(name) is not None:
            kwargs[name] = date.fromisoformat(kwargs[name])
    for name in _DATETIME_FIELDS:
        if kwargs.get(name) is not None:
            kwargs[name] = datetime.fromisoformat(kwargs[name])
    if "manual_floor" in kwargs:
        kwargs["manual_floor"] = RiskMode(kwargs["manual_floor"])
    return RiskState(**kwargs)
