"""Clocks: broker server time -> UTC for the engine, UTC -> WIB for the user.

MT5 stamps bars and ticks in the broker's server clock as naive epochs. The usual convention
is "New York + 7 h" (UTC+2 in northern winter, UTC+3 while US daylight saving is on), so the
daily gold break at 17:00 New York falls at 00:00 server time. Other brokers run a fixed
offset or an IANA zone; `ServerClock.parse` accepts all three forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

WIB = ZoneInfo("Asia/Jakarta")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_SERVER_TZ = "NY+7"

_NY_PLUS = re.compile(r"^NY([+-]\d{1,2})$", re.IGNORECASE)
_FIXED = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ServerClock:
    """Converts naive broker-server times to aware UTC and back.

    kind is "ny" (New York wall clock shifted by `hours`), "fixed" (UTC offset) or "zone" (IANA).
    """

    kind: str
    hours: float = 0.0
    zone: str = ""

    @classmethod
    def parse(cls, spec: str) -> ServerClock:
        """`NY+7` (default), `UTC+2` / `+03:00`, or an IANA name like `Europe/Athens`."""
        text = spec.strip()
        if m := _NY_PLUS.match(text):
            return cls("ny", hours=float(int(m.group(1))))
        if m := _FIXED.match(text):
            sign = 1 if m.group(1) == "+" else -1
            hours = int(m.group(2)) + int(m.group(3) or 0) / 60
            if hours > 14:
                raise ValueError(f"server time zone {spec!r}: offset beyond ±14 h")
            return cls("fixed", hours=sign * hours)
        if text.upper() in {"UTC", "GMT", "Z"}:
            return cls("fixed", hours=0.0)
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"server time zone {spec!r} is not 'NY+7', a UTC offset like 'UTC+2', or an IANA zone"
            ) from exc
        return cls("zone", zone=text)

    def _wall_zone(self) -> tzinfo:
        if self.kind == "ny":
            return NEW_YORK
        if self.kind == "zone":
            return ZoneInfo(self.zone)
        from datetime import timezone

        return timezone(timedelta(hours=self.hours))

    def _shift(self) -> timedelta:
        return timedelta(hours=self.hours) if self.kind == "ny" else timedelta(0)

    def to_utc(self, server_time: datetime) -> datetime:
        """Naive server wall time -> aware UTC."""
        if server_time.tzinfo is not None:
            return server_time.astimezone(UTC)
        wall = server_time - self._shift()
        return wall.replace(tzinfo=self._wall_zone()).astimezone(UTC)

    def from_utc(self, utc_time: datetime) -> datetime:
        """Aware UTC -> naive server wall time."""
        wall = utc_time.astimezone(self._wall_zone()).replace(tzinfo=None)
        return wall + self._shift()

    def epoch_to_utc(self, server_epoch: float) -> datetime:
        """MT5 epoch seconds (server wall clock counted as if UTC) -> aware UTC."""
        naive = datetime(1970, 1, 1) + timedelta(seconds=float(server_epoch))
        return self.to_utc(naive)

    def utc_to_epoch(self, utc_time: datetime) -> int:
        naive = self.from_utc(utc_time)
        return int((naive - datetime(1970, 1, 1)).total_seconds())

    def series_to_utc(self, times: pl.Series) -> pl.Series:
        """Vectorised `to_utc` for a naive Datetime series (DST-aware for zone kinds)."""
        if self.kind == "fixed":
            minutes = round(self.hours * 60)
            return times.dt.offset_by(f"{-minutes}m").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        shifted = times.dt.offset_by(f"{-round(self.hours * 60)}m") if self.kind == "ny" else times
        zone = NEW_YORK.key if self.kind == "ny" else self.zone
        # Wall times that fall in a DST gap or fold: take the earliest valid interpretation.
        return (
            shifted.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            .dt.cast_time_unit("us")
        )

    def describe(self) -> str:
        if self.kind == "ny":
            return f"New York {self.hours:+g} h"
        if self.kind == "fixed":
            return f"UTC{self.hours:+g}"
        return self.zone


def utc_now() -> datetime:
    return datetime.now(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def at_ms(ms: int) -> datetime:
    """The UTC time `ms` milliseconds after the epoch (a tick's time): exact integer arithmetic, and a
    fraction of `timedelta(milliseconds=...)`'s cost."""
    return EPOCH + ONE_MS * ms


def ms_of(t: datetime) -> int:
    """`at_ms`'s inverse: an aware time's whole milliseconds since the epoch, in integers (a float
    `timestamp() * 1000` may land a hair under a millisecond that is not a binary fraction)."""
    return (t - EPOCH) // ONE_MS


def to_wib(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("to_wib needs an aware datetime")
    return t.astimezone(WIB)


def wib_date(t: datetime) -> date:
    """The trading day as the user counts it: the date in WIB (decision 4)."""
    return _WIB_DAYS.date_of(t)


class _WibDays:
    """`wib_date`, keeping the UTC bounds of the WIB day it last answered: the 1-second step asks for
    the day every market second, and converting the time zone was the dearest part of that. The bounds
    and the day are one tuple, set in one assignment, so a thread reading them never sees a mix."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        never = datetime.min.replace(tzinfo=UTC)
        self.kept: tuple[datetime, datetime, date] = (never, never, date.min)  # from, until, day

    def date_of(self, t: datetime) -> date:
        start, end, day = self.kept
        if t.tzinfo is UTC and start <= t < end:
            return day
        day = to_wib(t).date()
        if t.tzinfo is UTC:
            self._keep(day)
        return day

    def _keep(self, day: date) -> None:
        """Keep `day`'s bounds when its UTC offset holds all day (WIB's always has since 1964): every
        moment between its midnights then falls on it."""
        start = datetime.combine(day, time(), WIB)
        end = datetime.combine(day + timedelta(days=1), time(), WIB)
        if start.utcoffset() == end.utcoffset():
            self.kept = (start.astimezone(UTC), end.astimezone(UTC), day)


_WIB_DAYS = _WibDays()


def fmt_wib(t: datetime, with_date: bool = False) -> str:
    w = to_wib(t)
    return w.strftime("%Y-%m-%d %H:%M WIB" if with_date else "%H:%M WIB")


def estimate_server_offset_hours(server_epoch: float, now_utc: datetime) -> float:
    """Offset of the server clock from UTC read off a fresh tick, rounded to 30 minutes."""
    naive_now = now_utc.astimezone(UTC).replace(tzinfo=None)
    diff = (datetime(1970, 1, 1) + timedelta(seconds=float(server_epoch)) - naive_now).total_seconds()
    return round(diff / 1800) / 2
