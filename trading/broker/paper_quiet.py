"""Which of the next ticks a paper account would take without acting (`quiet_count`): the shortcut a
replay takes through ticks on which no SL/TP is reached and no stop-out is possible."""

from __future__ import annotations

import operator
from collections.abc import Collection

import numpy as np
from numba import njit

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
    return count_with_rows(position_rows(positions, spec), balance, margin, stop_out_level, bids, asks)


def position_rows(positions: Collection[Position], spec: SymbolSpec) -> np.ndarray:
    """The positions as `_first_acting` reads them: (buy, sign, sl, tp, open price, money per price unit)."""
    return np.array(
        [
            (
                1.0 if pos.side is Side.BUY else 0.0,
                pos.side.sign,
                pos.sl,
                pos.tp,
                pos.open_price,
                spec.money_per_price_unit(pos.volume),
            )
            for pos in positions
        ],
        dtype=np.float64,
    )


class QuietRows:
    """One account's `position_rows`, kept while the positions and the symbol are the same records (a
    replay asks for the quiet ticks several times a bar; the positions change a few times a trade)."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: tuple[tuple[object, ...], np.ndarray] = ((), np.empty((0, 6), dtype=np.float64))

    def of(self, positions: Collection[Position], spec: SymbolSpec) -> np.ndarray:
        key = (spec, *positions)
        kept_key, rows = self._kept
        if len(key) != len(kept_key) or not all(map(operator.is_, key, kept_key)):
            rows = position_rows(positions, spec)
            self._kept = (key, rows)
        return rows


def count_with_rows(
    rows: np.ndarray, balance: float, margin: float, stop_out_level: float, bids: np.ndarray, asks: np.ndarray
) -> int:
    """`quiet_count` on the positions' rows (`position_rows`; at least one)."""
    if bids.size == 0:
        return 0
    check_stop_out = stop_out_level > 0 and margin > 0
    slack = 0.01 * rows.shape[0] + 0.02  # the per-position and total roundings
    return int(_first_acting(rows, bids, asks, balance, margin, stop_out_level, slack, check_stop_out))


@njit(cache=True)
def _first_acting(
    rows: np.ndarray,
    bids: np.ndarray,
    asks: np.ndarray,
    balance: float,
    margin: float,
    stop_out_level: float,
    slack: float,
    check_stop_out: bool,
) -> int:
    """The first tick on which a stop or target is reached or a stop-out is possible (n: none); each
    row is (buy, sign, sl, tp, open price, money per price unit), the arithmetic as the account's."""
    n = bids.size
    for i in range(n):
        floating = 0.0
        for r in range(rows.shape[0]):
            price = bids[i] if rows[r, 0] == 1.0 else asks[i]
            sign = rows[r, 1]
            sl, tp = rows[r, 2], rows[r, 3]
            if sl != 0.0 and (price - sl) * sign <= 0:
                return i
            if tp != 0.0 and (price - tp) * sign >= 0:
                return i
            floating += (price - rows[r, 4]) * sign * rows[r, 5]
        if check_stop_out and (balance + floating - slack) / margin * 100 <= stop_out_level + 1e-9:
            return i
    return n
