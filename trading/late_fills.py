"""Orders whose outcome was unknown when the engine booked them as failed (a timeout, a lost link): the
broker may still fill them later. A position of ours that appears afterwards is matched to such an
order by what the order carried (symbol, side, magic, comment) and when it was sent, so the adopted
position is journaled against its decision (`filled_late`) instead of as a stranger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from trading.domain import Position, Side
from trading.records import Decision

LATE_FILL_WINDOW = timedelta(minutes=15)  # how long after it was sent an unknown order may still fill
CLOCK_SKEW = timedelta(minutes=2)  # a broker's fill time may read a little before our send time
VOLUME_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class UnknownOrder:
    """An entry order sent for `decision` whose fate the broker did not tell."""

    decision: Decision
    symbol: str
    side: Side
    volume: float  # as sent; the broker may fill less (a partial fill, a volume cut for the stop)
    sl: float
    tp: float
    magic: int
    comment: str
    sent_at: datetime
    error: str
    risk_money: float = 0.0


def may_be_its_fill(order: UnknownOrder, pos: Position) -> bool:
    """Whether `pos` can be the fill of `order`: same symbol, side and magic, no more volume than sent,
    opened after the order was sent (within the skew) and before the window closed."""
    return (
        pos.symbol == order.symbol
        and pos.side is order.side
        and pos.magic == order.magic
        and 0 < pos.volume <= order.volume + VOLUME_EPS
        and order.sent_at - CLOCK_SKEW <= pos.open_time <= order.sent_at + LATE_FILL_WINDOW
    )


def match_late_fill(pos: Position, orders: Sequence[UnknownOrder]) -> UnknownOrder | None:
    """The unknown order `pos` is the late fill of, or None. Among several candidates the one whose
    comment the position carries, then the most recently sent before the fill, wins."""
    found = [o for o in orders if may_be_its_fill(o, pos)]
    if not found:
        return None

    def rank(o: UnknownOrder) -> tuple[bool, bool, datetime]:
        return (bool(o.comment) and pos.comment == o.comment, o.sent_at <= pos.open_time, o.sent_at)

    return max(found, key=rank)


def expired(orders: Sequence[UnknownOrder], now: datetime) -> list[UnknownOrder]:
    """The orders that can no longer fill (older than the window)."""
    return [o for o in orders if now - o.sent_at > LATE_FILL_WINDOW]


def late_fill_note(order: UnknownOrder, pos: Position) -> str:
    """The decision's new reason and the chat's line for a late fill."""
    return (
        f"filled late: the order sent at {order.sent_at:%H:%M:%S} UTC was booked as failed ({order.error}); "
        f"position #{pos.ticket} opened at {pos.open_time:%H:%M:%S} UTC"
    )


__all__ = [
    "LATE_FILL_WINDOW",
    "UnknownOrder",
    "expired",
    "late_fill_note",
    "match_late_fill",
    "may_be_its_fill",
]
