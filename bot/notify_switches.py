"""Which messages reach the chat: a switch (`on`, `silent`, `off`) for every event kind and report kind.

`/notify` changes them (bot.notifier.NotifyControl) and the journal keeps them under NOTIFY_STATE_KEY;
the settings' per-event switches give the starting values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from bot.config import REPORT_KINDS
from trading.events import EventKind

SWITCH_VALUES = ("on", "silent", "off")
MESSAGE_KINDS = (*(k.value for k in EventKind), *REPORT_KINDS)
NOTIFY_STATE_KEY = "notify_switches"
SILENT_BY_DEFAULT = frozenset({"market_update", "hourly"})  # they would buzz the phone on a schedule


def check_switch(name: str, value: str) -> tuple[str, str]:
    """("Market_Update ", "OFF") -> ("market_update", "off"); ValueError naming the bad part."""
    kind, v = name.strip().lower(), value.strip().lower()
    if kind not in MESSAGE_KINDS:
        raise ValueError(
            f"notification switch {name!r}: unknown event kind or report (known: {', '.join(MESSAGE_KINDS)})"
        )
    if v not in SWITCH_VALUES:
        raise ValueError(f"notification switch {name}={value!r}: use one of {', '.join(SWITCH_VALUES)}")
    return kind, v


def parse_switches(switches: Mapping[str, str]) -> tuple[frozenset[EventKind], frozenset[EventKind]]:
    """Settings' per-event switches {"trade_closed": "on", "sl_moved": "silent", "info": "off"} ->
    (quiet_kinds, muted_kinds) of event kinds. An unknown kind or value raises ValueError naming it."""
    quiet, muted = set(), set()
    for name, value in switches.items():
        kind, v = check_switch(name, value)
        if kind in REPORT_KINDS:
            raise ValueError(
                f"notification switch {name!r}: unknown event kind (a report kind; use Notifier.set_switch)"
            )
        if v == "silent":
            quiet.add(EventKind(kind))
        elif v == "off":
            muted.add(EventKind(kind))
    return frozenset(quiet), frozenset(muted)


def _kind(k: EventKind | str) -> str:
    return k if isinstance(k, str) and k in REPORT_KINDS else str(EventKind(k))


class Switches:
    """The switch of every message kind; a kind never switched is on (the scheduled reports: silent)."""

    def __init__(
        self, quiet_kinds: Iterable[EventKind | str] = (), muted_kinds: Iterable[EventKind | str] = ()
    ) -> None:
        self.values: dict[str, str] = {}
        for k in quiet_kinds:
            self.values[_kind(k)] = "silent"
        for k in muted_kinds:
            self.values[_kind(k)] = "off"

    def get(self, kind: str) -> str:
        return self.values.get(kind, "silent" if kind in SILENT_BY_DEFAULT else "on")

    def set(self, kind: str, value: str) -> tuple[str, str]:
        """Switch one message kind; ValueError (one line) on an unknown kind or value."""
        kind, value = check_switch(kind, value)
        self.values[kind] = value
        return kind, value

    def load(self, saved: Mapping[str, str]) -> list[str]:
        """Restore the switches the journal kept; the kinds set (unknown or bad entries from an older
        version are ignored)."""
        done = []
        for kind, value in saved.items():
            with contextlib.suppress(ValueError):
                done.append(self.set(kind, value)[0])
        return done

    def to_save(self) -> dict[str, str]:
        return dict(sorted(self.values.items()))

    def event_kinds(self, value: str) -> frozenset[EventKind]:
        """The event kinds (not reports) switched to `value`."""
        return frozenset(EventKind(k) for k, v in self.values.items() if v == value and k not in REPORT_KINDS)
