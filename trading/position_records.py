"""A `Position` record rebuilt with a few figures changed: the broker's marks on every tick and a stop
moved several times a trade. `dataclasses.replace` reads the fields by name and calls the frozen
record's `__init__` with keywords; these call it with the fields in order, several times cheaper."""

from __future__ import annotations

from dataclasses import fields

from trading.domain import Position

# the functions below name every field of Position: a field added to the record must be added there too
_POSITION_FIELDS = (
    "ticket", "symbol", "side", "volume", "open_price", "open_time", "sl", "tp", "profit", "magic",
    "comment", "current_price", "swap",
)  # fmt: skip
if tuple(f.name for f in fields(Position)) != _POSITION_FIELDS:
    raise TypeError("trading.domain.Position changed: update trading.position_records")


def marked(pos: Position, profit: float, price: float) -> Position:
    """`replace(pos, profit=profit, current_price=price)`."""
    return Position(
        pos.ticket, pos.symbol, pos.side, pos.volume, pos.open_price, pos.open_time, pos.sl, pos.tp,
        profit, pos.magic, pos.comment, price, pos.swap,
    )  # fmt: skip


def with_stops(pos: Position, sl: float, tp: float) -> Position:
    """`replace(pos, sl=sl, tp=tp)`."""
    return Position(
        pos.ticket, pos.symbol, pos.side, pos.volume, pos.open_price, pos.open_time, sl, tp,
        pos.profit, pos.magic, pos.comment, pos.current_price, pos.swap,
    )  # fmt: skip
