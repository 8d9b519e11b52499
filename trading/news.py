"""News blackout: no new entries around high-impact USD events.

The calendar is the common weekly format (as in the widely mirrored `ff_calendar_thisweek.json`):
a JSON list, or a CSV with the same columns, of events with `title`, `country`, `date` (ISO 8601
with offset), `impact` (High/Medium/Low/Holiday). It comes from a local file or a URL; a URL is
fetched off the event loop by the 5-minute job and cached to disk so a restart works offline.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trading.gates import NewsStatus
from trading.timezones import to_wib

log = logging.getLogger(__name__)


class CalendarError(ValueError):
    """The calendar could not be read; the message says which entry and why."""


@dataclass(frozen=True, slots=True)
class NewsEvent:
    time: datetime  # UTC
    title: str
    country: str
    impact: str

    @property
    def is_fomc(self) -> bool:
        t = self.title.lower()
        return "fomc" in t or "federal funds rate" in t or "fed interest rate" in t


@dataclass(frozen=True, slots=True)
class BlackoutRules:
    before_minutes: int = 15
    after_minutes: int = 30
    after_fomc_minutes: int = 45
    currencies: frozenset[str] = frozenset({"USD"})
    impacts: frozenset[str] = frozenset({"High"})

    def window(self, event: NewsEvent) -> tuple[datetime, datetime]:
        after = self.after_fomc_minutes if event.is_fomc else self.after_minutes
        return event.time - timedelta(minutes=self.before_minutes), event.time + timedelta(minutes=after)

    def relevant(self, event: NewsEvent) -> bool:
        return event.country.upper() in self.currencies and event.impact in self.impacts


def _parse_time(raw: str, where: str) -> datetime:
    try:
        t = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise CalendarError(f"{where}: bad date {raw!r}") from exc
    if t.tzinfo is None:
        raise CalendarError(f"{where}: date {raw!r} has no UTC offset")
    return t.astimezone(UTC)


def parse_events(rows: Iterable[dict[str, object]]) -> list[NewsEvent]:
    out = []
    for i, row in enumerate(rows, start=1):
        where = f"event {i}"
        missing = [k for k in ("title", "country", "date", "impact") if not row.get(k)]
        if missing:
            raise CalendarError(f"{where}: missing {', '.join(missing)}")
        out.append(
            NewsEvent(
                _parse_time(str(row["date"]), where),
                str(row["title"]).strip(),
                str(row["country"]).strip(),
                str(row["impact"]).strip().capitalize(),
            )
        )
    return sorted(out, key=lambda e: e.time)


def parse_calendar(text: str) -> list[NewsEvent]:
    """JSON list or CSV with a header row."""
    stripped = text.lstrip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CalendarError(f"calendar is not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("events", [])
        if not isinstance(data, list):
            raise CalendarError("calendar JSON must be a list of events")
        return parse_events(data)
    return parse_events(csv.DictReader(io.StringIO(text)))


class NewsCalendar:
    """Holds the events; `status(now)` is the gate's input, `upcoming()` the 5-minute job's."""

    def __init__(
        self,
        source: str | None = None,
        cache_path: Path | None = None,
        rules: BlackoutRules | None = None,
        events: Sequence[NewsEvent] = (),
    ) -> None:
        self.source = source
        self.cache_path = cache_path
        self.rules = rules or BlackoutRules()
        self.events: list[NewsEvent] = sorted(events, key=lambda e: e.time)
        self.loaded_at: datetime | None = None
        self.last_error = ""

    def refresh(self) -> int:
        """Reload from the source (blocking: call it in a thread). Keeps the old events on failure."""
        if not self.source:
            return len(self.events)
        try:
            if self.source.startswith(("http://", "https://")):
                with urllib.request.urlopen(self.source, timeout=10) as resp:
                    text = resp.read().decode("utf-8")
                if self.cache_path:
                    self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                    self.cache_path.write_text(text, encoding="utf-8")
            else:
                text = Path(self.source).read_text(encoding="utf-8")
            self.events = parse_calendar(text)
            self.last_error = ""
        except (OSError, CalendarError) as exc:
            self.last_error = str(exc)
            log.warning("news calendar refresh failed: %s", exc)
            if not self.events and self.cache_path and self.cache_path.exists():
                self.events = parse_calendar(self.cache_path.read_text(encoding="utf-8"))
        self.loaded_at = datetime.now(UTC)
        return len(self.events)

    def status(self, now: datetime) -> NewsStatus:
        for e in self.events:
            if not self.rules.relevant(e):
                continue
            start, end = self.rules.window(e)
            if start <= now <= end:
                when = "in" if now < e.time else "since"
                minutes = abs((e.time - now).total_seconds()) // 60
                return NewsStatus(
                    True,
                    f"{e.title} ({e.country}) {when} {minutes:.0f} min: blackout until "
                    f"{to_wib(end):%H:%M} WIB",
                )
            if start > now:
                break
        nxt = self.next_event(now)
        return NewsStatus(False, f"next: {nxt.title} at {to_wib(nxt.time):%a %H:%M} WIB" if nxt else "")

    def next_event(self, now: datetime) -> NewsEvent | None:
        return next((e for e in self.events if e.time > now and self.rules.relevant(e)), None)

    def upcoming(self, now: datetime, within: timedelta = timedelta(hours=1)) -> list[NewsEvent]:
        return [e for e in self.events if self.rules.relevant(e) and now < e.time <= now + within]
