"""Which of the next ticks a paper account would take without acting (`quiet_count`): the shortcut a
replay takes through ticks on which no SL/TP is reached and no stop-out is possible."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from trading.domain import Position, Side, SymbolSpec


def quiet_count(
    positions: Collection[Position],
    spec: SymbolSpec,
    balance: float,
    margin: float,
    stop_out_level: float,
    bids: np.ndarray,
    asks: np.ndarray,
) -> int:
    """How many of these next ticks (in order) the account would take without acting: no SL/TP
    reached and, with a margin allowance for the rounding, no stop-out possible. The first tick
    that might act is left for the account itself, so the answer is exact, never early."""
    n = int(bids.size)
    if n == 0 or not positions:
        return n
    act = np.zeros(n, dtype=bool)
    floating = np.zeros(n)
    for pos in positions:
        price = bids if pos.side is Side.BUY else asks
        sign = pos.side.sign
        if pos.sl:
            act |= (price - pos.sl) * sign <= 0
        if pos.tp:
            act |= (price - pos.tp) * sign >= 0
        floating += (price - pos.open_price) * sign * spec.money_per_price_unit(pos.volume)
    if stop_out_level > 0 and margin > 0:
        slack = 0.01 * len(positions) + 0.02  # the per-position and total roundings
        act |= (balance + floating - slack) / margin * 100 <= stop_out_level + 1e-9
    hits = np.flatnonzero(act)
    return int(hits[0]) if hits.size else n
