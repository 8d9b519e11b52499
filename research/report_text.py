"""How the research commands write for a person: a date range in WIB with its UTC hours, lines broken
between phrases (never inside one) at 80 columns, and progress that shows in a terminal and in a pipe.

Stdlib only at import (the parser stays fast); rich is imported when a terminal progress bar is drawn.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from zoneinfo import ZoneInfo

from trading.numbers import count

if TYPE_CHECKING:
    from trading.backtest import HaltEvent

WIB = ZoneInfo("Asia/Jakarta")
WIDTH = 80


class Tracker(Protocol):
    """(done, in all), as run_backtest's progress calls it, with an optional note of the stage."""

    def __call__(self, done: int, total: int, note: str = "") -> None: ...


def _moment(value: datetime | str) -> datetime:
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def span(start: datetime | str, end: datetime | str) -> str:
    """'26 Jun 2025 15:00 → 12 Dec 2025 11:45 WIB (08:00 → 04:45 UTC)': the trader's clock first."""
    a, b = _moment(start), _moment(end)
    wa, wb = a.astimezone(WIB), b.astimezone(WIB)
    ua, ub = a.astimezone(UTC), b.astimezone(UTC)
    return f"{wa:%d %b %Y %H:%M} → {wb:%d %b %Y %H:%M} WIB ({ua:%H:%M} → {ub:%H:%M} UTC)"


def phrase_lines(
    first: str, phrases: list[str], width: int = WIDTH, indent: str = "  ", sep: str = ", "
) -> list[str]:
    """`first` then the phrases joined by `sep`, broken between phrases so no line passes `width`
    (a phrase longer than a line gets a line of its own); follow-on lines are indented."""
    lines, line = [], first
    for i, phrase in enumerate(phrases):
        piece = phrase + (sep.rstrip() if i < len(phrases) - 1 else "")
        joiner = "" if line in ("", indent) or line.endswith((": ", "(")) else " "
        if line.strip() and len(line) + len(joiner) + len(piece) > width:
            lines.append(line)
            line, joiner = indent, ""
        line += joiner + piece
    lines.append(line)
    return lines


class PlainProgress:
    """Progress as plain lines (a pipe, a log file, CI): at most one line every `every` seconds per run,
    and one when a run ends, so a long command never looks dead."""

    def __init__(
        self,
        out: TextIO | None = None,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "bars",
    ) -> None:
        self.out = out or sys.stderr
        self.every = every
        self.clock = clock
        self.unit = unit

    def tracker(self, label: str) -> Tracker:
        began = self.clock()
        last = [began]

        def update(done: int, total: int, note: str = "") -> None:
            now = self.clock()
            finished = done >= total
            if not finished and now - last[0] < self.every:
                return
            last[0] = now
            state = "done" if finished else f"{done / total:.0%}" if total else "…"
            extra = f"; {note}" if note and not finished else ""
            self.out.write(
                f"{label}: {count(done)} of {count(total)} {self.unit}, {now - began:.0f} s "
                f"({state}{extra})\n"
            )
            self.out.flush()

        return update


@contextmanager
def bar_progress(console: Any, total: int, unit: str = "bars") -> Iterator[Callable[[str], Tracker]]:
    """`tracker(label)` for each run: a rich progress bar on a terminal, plain lines on stderr otherwise
    (every 10 s and at the end). A tracker's `note` names the stage beside the label."""
    if not getattr(console, "is_terminal", False):
        plain = PlainProgress(unit=unit)
        yield plain.tracker
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} " + unit),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:

        def tracker(label: str) -> Tracker:
            task = progress.add_task(label, total=total)

            def update(done: int, total: int, note: str = "") -> None:
                progress.update(
                    task, completed=done, total=total, description=f"{label}: {note}" if note else label
                )

            return update

        yield tracker


@contextmanager
def status_lines(console: Any, first: str, out: TextIO | None = None) -> Iterator[Callable[[str], None]]:
    """`say(text)` for a stage with no count: a rich spinner on a terminal, else each text as a plain line
    on stderr (stages come seconds apart, so every one is written)."""
    if not getattr(console, "is_terminal", False):
        stream = out or sys.stderr

        def say(text: str) -> None:
            stream.write(text + "\n")
            stream.flush()

        say(first)
        yield say
        return
    with console.status(first) as status:
        yield status.update


def write_json(target: str, out: dict[str, Any]) -> None:
    """A report as one JSON line, to stdout for "-" or to a file."""
    text = json.dumps(out, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")


def fmt_pf(m: dict[str, Any]) -> str:
    """Profit factor for a table cell: None means no losing trade (or no trade at all)."""
    pf = m.get("profit_factor")
    if pf is not None:
        return f"{pf:.2f}"
    return "no loss" if m.get("trades") and m.get("net_profit", 0) > 0 else "n/a"


def fmt_counts(counts: dict[str, Any], limit: int | None = None) -> str:
    """{'sl': 40, 'tp': 12} -> 'sl 40, tp 12' (most frequent first, as given)."""
    items = list(counts.items())[:limit] if limit else list(counts.items())
    return ", ".join(f"{k} {count(v)}" for k, v in items) or "none"


def halt_marks(halts: list[HaltEvent]) -> list[tuple[datetime, datetime | None, str]]:
    """HaltEvents as the report's equity chart marks them: (start, end, label with the start in UTC)."""
    return [(h.start, h.end, f"halted {h.start:%m-%d %H:%M} UTC: {h.limit_name}") for h in halts]


def halt_lines(halts: list[dict[str, Any]], who: str = "strategy") -> list[str]:
    return [
        f"{who} halted {h['start'][:16]} → {(h['end'] or 'end of data')[:16]} by a loss limit ({h['reason']}): "
        f"{count(h['bars'])} bars without entries, {count(h['setups_blocked'])} of them with a setup"
        for h in halts
    ]
