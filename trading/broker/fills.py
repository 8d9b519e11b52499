"""The fill model: the one place that prices a simulated fill, for paper trading, replays and backtests.

A market order fills at the tick it meets (BUY at the ask, SELL at the bid: that tick's own spread),
moved against the trader by `slippage_points`; a close fills at the closing side (BUY closes at the
bid, SELL at the ask) less the same slippage. A stop or take-profit fills at its level, or at the
tick's price when the price gapped past it (no slippage: the server holds the level). Commission is
charged per lot on every deal, in and out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading.domain import Side, Tick


@dataclass(frozen=True, slots=True)
class FillModel:
    slippage_points: int = 0
    commission_per_lot: float = 0.0
    point: float = 0.01
    digits: int = 2

    def __post_init__(self) -> None:
        if self.slippage_points < 0:
            raise ValueError("slippage_points must be >= 0")
        if not math.isfinite(self.commission_per_lot) or self.commission_per_lot < 0:
            raise ValueError("commission_per_lot must be >= 0")

    def _round(self, price: float) -> float:
        return round(price, self.digits)

    def entry_price(self, tick: Tick, side: Side) -> float:
        """Where a market order of `side` fills on `tick`."""
        return self._round(tick.price_to_open(side) + side.sign * self.slippage_points * self.point)

    def exit_price(self, tick: Tick, side: Side) -> float:
        """Where a market close of a `side` position fills on `tick`."""
        return self._round(tick.price_to_close(side) - side.sign * self.slippage_points * self.point)

    def commission(self, volume: float) -> float:
        """The (negative) commission of one deal of `volume` lots, in account money."""
        return -round(self.commission_per_lot * volume, 2)
