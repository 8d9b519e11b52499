"""Which clock a message shows: the market's, labelled when it is a replay, and wall time said as such.

A paper market replays bars faster than real time, so its clock runs ahead of the phone's. Every
message carries one clock line, from the market's clock; when that clock is a replay, the line says
so (`⏰ 18:35 WIB · market replay 60×`). Times that belong to the wall clock (an approval's expiry,
uptime) are marked "real time" in that case. The app sets the label once at start-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from trading.timezones import fmt_wib, utc_now

_replay_speed: float | None = None  # None: the market clock is the wall clock (live, dry-run)


def set_market_replay(speed: float | None) -> None:
    """Called at start-up: the paper market's speed factor, or None for a live market clock."""
    global _replay_speed
    _replay_speed = speed


def market_replay_speed() -> float | None:
    return _replay_speed


def market_clock_line(t: datetime, with_date: bool = False) -> str:
    """`⏰ 18:35 WIB`, or `⏰ 18:35 WIB · market replay 60×` on a replayed market."""
    label = f" · market replay {_replay_speed:g}×" if _replay_speed is not None else ""
    return f"⏰ {fmt_wib(t, with_date)}{label}"


def wall_time(t: datetime, always: bool = False) -> str:
    """A wall-clock time (an expiry): `08:44 WIB`, with ` real time` when the market clock is a replay
    (`always`: on a live market too, where a reader could still take it for the market's time)."""
    return fmt_wib(t) + (" real time" if always or _replay_speed is not None else "")


def uptime(started_wall: datetime, now_wall: datetime | None = None) -> timedelta:
    """How long the bot has run, in wall time whatever the market clock does."""
    return (now_wall or utc_now()) - started_wall
