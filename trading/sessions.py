"""Trading sessions and market hours as pure functions of a UTC instant.

Two clocks meet here (decision 9):
- Market hours are New York based: XAUUSD trades Sunday 18:00 -> Friday 17:00 America/New_York with a
  daily 17:00-18:00 break, so US daylight saving moves the break in UTC/WIB but never in New York.
- Sessions, danger zones and golden time are a WIB (UTC+7, no DST) table (entry-exit-risk.md §1).

`session_at` runs on every bar and costs a few microseconds: the WIB table is precomputed per minute
of the day, and the New York offset is cached per UTC hour (US DST switches on a whole UTC hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from trading.timezones import NEW_YORK

WIB_OFFSET_MINUTES = 7 * 60
MINUTES_PER_DAY = 24 * 60

# New York wall clock, minutes of the day
NY_DAILY_CLOSE = 17 * 60
NY_DAILY_OPEN = 18 * 60
FRIDAY, SATURDAY, SUNDAY = 4, 5, 6  # Monday = 0

FRIDAY_CUTOFF_MINUTES = 60  # no new entries in the last hour before the weekly close
NEAR_WEEKEND_MINUTES = 120  # market-close handler: "near" the weekly close

_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday

WEEKEND_REASON = "weekend: XAUUSD is closed from Friday 17:00 to Sunday 18:00 New York"
DAILY_BREAK_REASON = "daily break: XAUUSD is closed 17:00-18:00 New York"
FRIDAY_CUTOFF_REASON = (
    "Friday cut-off: no new entries in the last hour before the weekly close (17:00 New York)"
)


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One row of the WIB session table; `start` and `end` are inclusive WIB minutes of the day."""

    name: str
    start: int
    end: int
    volatility: str  # low | medium | high | extreme
    multiplier: float  # lot multiplier
    allowed: bool
    reason: str = ""  # why entries are refused, when not allowed
    golden: bool = False

    @property
    def window(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d} WIB"


# The effective table: spec §1.1's resolution priority (golden first, then the Tokyo-London overlap,
# then Sydney, Tokyo, London) and the §1.2 danger zones already applied, so every minute of the day
# falls in exactly one row. The overlap is blocked (DOC, decision 9); golden time is 20:00-23:59.
SESSION_TABLE: tuple[SessionWindow, ...] = (
    SessionWindow(
        "Off Hours", 0, 239, "low", 0.0, False, "dead zone 00:00-03:59 WIB: thin liquidity, wide spread"
    ),
    SessionWindow("Off Hours", 240, 359, "low", 0.0, False, "rollover 04:00-05:59 WIB: spread blow-out"),
    SessionWindow("Sydney", 360, 780, "low", 0.5, True),
    SessionWindow("Tokyo", 781, 899, "medium", 0.7, True),
    SessionWindow(
        "Tokyo-London Overlap",
        900,
        960,
        "high",
        0.0,
        False,
        "Tokyo-London overlap 15:00-16:00 WIB is blocked",
    ),
    SessionWindow("London", 961, 1199, "high", 1.0, True),
    SessionWindow("Golden Time", 1200, 1439, "extreme", 1.2, True, golden=True),
)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The session verdict for one instant: what /market shows and the session gate reads."""

    name: str
    volatility: str
    multiplier: float  # per-session lot multiplier; 0.0 whenever entries are not allowed
    allowed: bool
    reason: str  # why entries are not allowed, or ""
    is_golden: bool
    window: str  # e.g. "20:00-23:59 WIB"
    market_open: bool


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """XAUUSD market hours at one instant (New York based). Minutes are None while the market is closed."""

    is_open: bool
    reason: str  # "open", or why it is closed
    next_open_utc: datetime  # next moment the market opens (while open: the reopen after the coming close)
    next_close_utc: datetime  # next moment it closes (while closed: the close after the next open)
    minutes_to_daily_close: float | None  # to the next close, daily break or weekly
    minutes_to_weekly_close: float | None  # to Friday 17:00 New York
    near_weekend: bool  # open and within 2 h of the weekly close


def _check_table() -> None:
    expected = 0
    for row in SESSION_TABLE:
        if row.start != expected or row.end < row.start:
            raise AssertionError(f"session table gap or overlap at {row.name} {row.window}")
        expected = row.end + 1
    if expected != MINUTES_PER_DAY:
        raise AssertionError("session table does not cover the whole day")


_check_table()

_ROW_BY_MINUTE: tuple[SessionWindow, ...] = tuple(
    row for row in SESSION_TABLE for _ in range(row.start, row.end + 1)
)
_OPEN_INFO: tuple[SessionInfo, ...] = tuple(
    SessionInfo(
        r.name,
        r.volatility,
        r.multiplier if r.allowed else 0.0,
        r.allowed,
        r.reason,
        r.golden,
        r.window,
        True,
    )
    for r in _ROW_BY_MINUTE
)
_CUTOFF_INFO: tuple[SessionInfo, ...] = tuple(
    SessionInfo(r.name, r.volatility, 0.0, False, FRIDAY_CUTOFF_REASON, r.golden, r.window, True)
    for r in _ROW_BY_MINUTE
)
_WEEKEND_INFO = SessionInfo(
    "Market Closed", "none", 0.0, False, WEEKEND_REASON, False, "Fri 17:00 - Sun 18:00 New York", False
)
_BREAK_INFO = SessionInfo(
    "Market Closed", "none", 0.0, False, DAILY_BREAK_REASON, False, "17:00-18:00 New York", False
)

_OPEN, _WEEKEND, _BREAK, _CUTOFF = 0, 1, 2, 3


def _epoch_minutes(now_utc: datetime, who: str) -> tuple[float, int]:
    if not isinstance(now_utc, datetime):
        raise TypeError(f"{who} needs a datetime, got {type(now_utc).__name__}")
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError(f"{who} needs an aware datetime (UTC), got naive {now_utc.isoformat()}")
    ts = now_utc.timestamp()
    return ts, int(ts // 60)


@lru_cache(maxsize=16_384)
def _ny_offset_minutes(utc_hour: int) -> int:
    """New York's UTC offset during one UTC hour (DST switches at 06:00/07:00 UTC, on the hour)."""
    offset = datetime.fromtimestamp(utc_hour * 3600, UTC).astimezone(NEW_YORK).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() // 60)


def _ny_local_minutes(epoch_minute: int) -> int:
    """Minutes since 1970-01-01 00:00 on the New York wall clock."""
    return epoch_minute + _ny_offset_minutes(epoch_minute // 60)


def _state(ny_local: int) -> int:
    weekday = (ny_local // MINUTES_PER_DAY + _EPOCH_WEEKDAY) % 7
    minute = ny_local % MINUTES_PER_DAY
    if weekday == SATURDAY or (weekday == SUNDAY and minute < NY_DAILY_OPEN):
        return _WEEKEND
    if weekday == FRIDAY:
        if minute >= NY_DAILY_CLOSE:
            return _WEEKEND
        if minute >= NY_DAILY_CLOSE - FRIDAY_CUTOFF_MINUTES:
            return _CUTOFF
        return _OPEN
    if weekday != SUNDAY and NY_DAILY_CLOSE <= minute < NY_DAILY_OPEN:
        return _BREAK
    return _OPEN


def session_at(now_utc: datetime) -> SessionInfo:
    """The WIB session and whether new entries are allowed at this instant.

    Checks in the spec's order: weekend -> daily break -> Friday cut-off -> danger zones and the
    session table (dead zone, rollover, blocked Tokyo-London overlap).
    """
    _, minute = _epoch_minutes(now_utc, "session_at")
    return _session_info(_state(_ny_local_minutes(minute)), minute)


def _session_info(state: int, epoch_minute: int) -> SessionInfo:
    """The session of an instant from its market state (`_state`) and its minute since the epoch."""
    if state == _WEEKEND:
        return _WEEKEND_INFO
    if state == _BREAK:
        return _BREAK_INFO
    wib_minute = (epoch_minute + WIB_OFFSET_MINUTES) % MINUTES_PER_DAY
    return _CUTOFF_INFO[wib_minute] if state == _CUTOFF else _OPEN_INFO[wib_minute]


def sessions_at(epoch_minutes: np.ndarray) -> list[SessionInfo]:
    """`session_at` of many instants at once (UTC minutes since the epoch): the New York wall clock and
    the market state vectorised, from the same per-hour offsets and `_state` (as a weekly table)."""
    minutes = np.asarray(epoch_minutes, dtype=np.int64)
    weekday, ny_minute = ny_weekday_minute_epoch(minutes * 60)
    states = _weekly_states()[weekday * MINUTES_PER_DAY + ny_minute]
    return [
        _session_info(state, minute) for state, minute in zip(states.tolist(), minutes.tolist(), strict=True)
    ]


@lru_cache(maxsize=1)
def _weekly_states() -> np.ndarray:
    """`_state` of every New York weekday and minute, indexed by weekday * 1440 + minute of the day."""
    table = np.zeros(7 * MINUTES_PER_DAY, dtype=np.int64)
    for ny_local in range(7 * MINUTES_PER_DAY):
        weekday = (ny_local // MINUTES_PER_DAY + _EPOCH_WEEKDAY) % 7
        table[weekday * MINUTES_PER_DAY + ny_local % MINUTES_PER_DAY] = _state(ny_local)
    return table


def is_market_open(now_utc: datetime) -> bool:
    _, minute = _epoch_minutes(now_utc, "is_market_open")
    return _state(_ny_local_minutes(minute)) in (_OPEN, _CUTOFF)


def _ny_wall_to_utc(day: int, minute_of_day: int) -> datetime:
    """New York wall time (days since the epoch, minute of the day) -> aware UTC.

    17:00 and 18:00 never fall in a DST gap or fold (the switch is at 02:00)."""
    wall = datetime(1970, 1, 1) + timedelta(days=day, minutes=minute_of_day)
    return wall.replace(tzinfo=NEW_YORK).astimezone(UTC)


def _next_close_day(day: int, weekday: int, minute: int) -> int:
    """The New York day of the next 17:00 close, from an open instant."""
    return day if weekday != SUNDAY and minute < NY_DAILY_CLOSE else day + 1


def market_status(now_utc: datetime) -> MarketStatus:
    """Open or closed, why, the next open and close, and the minutes left to the daily/weekly close."""
    ts, minute = _epoch_minutes(now_utc, "market_status")
    ny_local = _ny_local_minutes(minute)
    state = _state(ny_local)
    day, ny_minute = divmod(ny_local, MINUTES_PER_DAY)
    weekday = (day + _EPOCH_WEEKDAY) % 7

    if state in (_OPEN, _CUTOFF):
        close_day = _next_close_day(day, weekday, ny_minute)
        close_weekday = (close_day + _EPOCH_WEEKDAY) % 7
        next_close = _ny_wall_to_utc(close_day, NY_DAILY_CLOSE)
        reopen_day = close_day + 2 if close_weekday == FRIDAY else close_day
        next_open = _ny_wall_to_utc(reopen_day, NY_DAILY_OPEN)
        weekly_close = _ny_wall_to_utc(day + (FRIDAY - weekday) % 7, NY_DAILY_CLOSE)
        to_daily = (next_close.timestamp() - ts) / 60
        to_weekly = (weekly_close.timestamp() - ts) / 60
        return MarketStatus(
            True, "open", next_open, next_close, to_daily, to_weekly, to_weekly <= NEAR_WEEKEND_MINUTES
        )

    if state == _BREAK:
        open_day, reason = day, DAILY_BREAK_REASON
    else:  # weekend: the coming Sunday 18:00
        open_day, reason = day + (SUNDAY - weekday) % 7, WEEKEND_REASON
    next_open = _ny_wall_to_utc(open_day, NY_DAILY_OPEN)
    next_close = _ny_wall_to_utc(open_day + 1, NY_DAILY_CLOSE)
    return MarketStatus(False, reason, next_open, next_close, None, None, False)


# --- vectorised views over a column of bar times (for the generator, features and backtests) ---


_SAMPLE_HOURS = 24 * 7  # New York changes offset twice a year, never twice within a week


def _offset_steps(first_hour: int, last_hour: int) -> tuple[np.ndarray, np.ndarray]:
    """UTC hours where New York's offset changes in [first_hour, last_hour], and the offset from each on.

    Built from the same cached per-hour lookup as `session_at`, so both paths agree by construction."""
    bounds, offsets = [first_hour], [_ny_offset_minutes(first_hour)]
    prev_hour, prev = first_hour, offsets[0]
    for hour in range(first_hour + _SAMPLE_HOURS, last_hour + _SAMPLE_HOURS, _SAMPLE_HOURS):
        offset = _ny_offset_minutes(hour)
        if offset != prev:
            lo, hi = prev_hour, hour  # bisect for the first hour with the new offset
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _ny_offset_minutes(mid) == prev else (lo, mid)
            bounds.append(hi)
            offsets.append(_ny_offset_minutes(hi))
        prev_hour, prev = hour, offset
    return np.asarray(bounds, dtype=np.int64), np.asarray(offsets, dtype=np.int64)


def ny_weekday_minute_epoch(epoch_seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New York weekday (Monday = 0) and minute of the day for UTC epoch seconds (vectorised)."""
    epoch = np.asarray(epoch_seconds, dtype=np.int64)
    if epoch.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    hours = epoch // 3600
    bounds, offsets = _offset_steps(int(hours.min()), int(hours.max()))
    local = epoch // 60 + offsets[np.searchsorted(bounds, hours, side="right") - 1]
    return (local // MINUTES_PER_DAY + _EPOCH_WEEKDAY) % 7, local % MINUTES_PER_DAY


def ny_weekday_minute(times: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """New York weekday (Monday = 0) and minute of the day for an aware Datetime series."""
    if not isinstance(times.dtype, pl.Datetime) or times.dtype.time_zone is None:
        raise ValueError(f"times must be a time-zone aware Datetime series, got {times.dtype}")
    return ny_weekday_minute_epoch(times.dt.epoch("s").to_numpy())


def open_mask_from_ny(weekday: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """The market-hours rule on New York weekday/minute arrays (the vectorised twin of `_state`)."""
    weekend = (
        (weekday == SATURDAY)
        | ((weekday == SUNDAY) & (minute < NY_DAILY_OPEN))
        | ((weekday == FRIDAY) & (minute >= NY_DAILY_CLOSE))
    )
    daily_break = (weekday < FRIDAY) & (minute >= NY_DAILY_CLOSE) & (minute < NY_DAILY_OPEN)
    open_mask: np.ndarray = ~(weekend | daily_break)
    return open_mask


def market_open_mask(times: pl.Series) -> np.ndarray:
    """Vectorised `is_market_open` for an aware Datetime series (the same New York rule)."""
    return open_mask_from_ny(*ny_weekday_minute(times))


def wib_minute_of_day(times: pl.Series) -> np.ndarray:
    """WIB minute of the day (0..1439) for an aware Datetime series; WIB has no DST."""
    if not isinstance(times.dtype, pl.Datetime) or times.dtype.time_zone is None:
        raise ValueError(f"times must be a time-zone aware Datetime series, got {times.dtype}")
    epoch_min = times.dt.epoch("s").to_numpy() // 60
    return ((epoch_min + WIB_OFFSET_MINUTES) % MINUTES_PER_DAY).astype(np.int32)


def session_names(times: pl.Series) -> np.ndarray:
    """The WIB table's session name per time (ignores market hours; index into SESSION_TABLE order)."""
    names = np.array([r.name for r in _ROW_BY_MINUTE], dtype=object)
    per_time: np.ndarray = names[wib_minute_of_day(times)]
    return per_time
