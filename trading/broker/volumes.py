"""Volume arithmetic every broker shares: what a (partial) close may take, checked before anything is
sent, and a volume rounded to the symbol's step (what a position keeps after a partial close)."""

from __future__ import annotations

import math

from trading.broker.base import InvalidOrder
from trading.domain import Position, SymbolSpec


def round_volume(spec: SymbolSpec, volume: float) -> float:
    """`volume` rounded to the decimals of the volume step (0.01 lots: two)."""
    decimals = max(0, -math.floor(math.log10(spec.volume_step)))
    return round(volume, decimals)


def close_volume(spec: SymbolSpec, pos: Position, volume: float | None) -> float:
    """The volume a close of `pos` takes: all of it (None), else `volume` snapped to the step, which
    must be a positive number, at least the minimum lot, at most the position's volume, and leave
    none or at least the minimum lot. Raises InvalidOrder naming the problem."""
    if volume is None:
        return pos.volume
    if not isinstance(volume, int | float) or not math.isfinite(volume) or volume <= 0:
        raise InvalidOrder(f"close volume must be a positive number, got {volume!r}")
    snapped = spec.snap_volume(volume)
    if snapped <= 0:
        raise InvalidOrder(f"close volume {volume} is below the minimum {spec.volume_min}")
    if snapped > pos.volume + 1e-9:
        raise InvalidOrder(f"close volume {volume:g} is more than the position's {pos.volume:g} lots")
    remaining = round_volume(spec, pos.volume - snapped)
    if 0 < remaining < spec.volume_min - 1e-9:
        raise InvalidOrder(
            f"closing {snapped:g} would leave {remaining:g} lots, below the minimum {spec.volume_min:g}"
        )
    return snapped
