"""The fill model: the one place that prices a simulated fill, for paper trading, replays and backtests.

A market order fills at the tick it meets (BUY at the ask, SELL at the bid: that tick's own spread),
moved against the trader by `slippage_points`; a close fills at the closing side (BUY closes at the
bid, SELL at the ask) less the same slippage. Commission is charged per lot on every deal, in and out.

A triggered stop loss or take profit fills as MetaTrader 5's tester fills it (`level_fill`): at its
level when the walked path crossed it between two ticks (a generated bar's or an M1 minute's vertices
are one continuous path), at the tick's price where the price got beyond it without passing through
it (the bar or minute opened beyond it, or a real tick jumped it): worse than the level for a stop,
better for a take profit. A stop loss then is a market order and slips like one; a take profit is a
limit order and never fills worse than its level, so it does not slip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trading.domain import DealReason, Side, Tick


@dataclass(frozen=True, slots=True)
class LevelFill:
    """One triggered stop loss or take profit: its level, where it filled, and whether it was crossed
    inside a walked path (False: a gap or a real tick's jump)."""

    reason: DealReason
    side: Side  # the position's side
    level: float
    price: float
    crossed: bool

    def beyond_points(self, point: float) -> float:
        """How far the fill is from the level against the trader, in points (negative: better)."""
        return round((self.level - self.price) * self.side.sign / point, 1) + 0.0  # no -0.0


def crossed_inside(tick: Tick, previous: Tick | None, side: Side, reason: DealReason, level: float) -> bool:
    """Whether `tick` reached `level` by walking from `previous` (the tick before it on the same path,
    on the untriggered side of the level): only then did the price pass through the level."""
    if not tick.walked or previous is None:
        return False
    before = previous.price_to_close(side)
    if reason is DealReason.SL:
        return (before - level) * side.sign > 0
    return (before - level) * side.sign < 0


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

    def level_fill(
        self, side: Side, reason: DealReason, level: float, price: float, *, crossed: bool
    ) -> float:
        """Where a `side` position's triggered SL or TP at `level` fills: at the level when the walked path
        `crossed` it, else at `price` (the closing price of the tick that reached it). A stop loss moves
        against the trader by the slippage; a take profit (a limit) does not."""
        fill = level if crossed else price
        if reason is DealReason.SL:
            fill -= side.sign * self.slippage_points * self.point
        return self._round(fill)

    def commission(self, volume: float) -> float:
        """The (negative) commission of one deal of `volume` lots, in account money."""
        return -round(self.commission_per_lot * volume, 2)


def slippage_summary(fills: Iterable[LevelFill], point: float = 0.01) -> dict[str, Any]:
    """Per kind (sl, tp): how many fills, how many got beyond the level without crossing it inside a
    walk (a gap or a real tick's jump), and the distance of every fill from its level against the
    trader, in points (slippage included): mean, p90 and worst. On real ticks this is the slippage the
    ticks themselves give a stop."""
    out: dict[str, Any] = {}
    rows = list(fills)
    for reason in (DealReason.SL, DealReason.TP):
        kind = [f for f in rows if f.reason is reason]
        beyond = np.array([f.beyond_points(point) for f in kind], dtype=float)
        out[reason.value.lower()] = {
            "fills": len(kind),
            "gapped": sum(not f.crossed for f in kind),
            "mean_points": round(float(beyond.mean()), 1) if beyond.size else 0.0,
            "p90_points": round(float(np.percentile(beyond, 90)), 1) if beyond.size else 0.0,
            "worst_points": round(float(beyond.max()), 1) if beyond.size else 0.0,
        }
    return out


def describe_slippage(summary: dict[str, Any], mode: str) -> str:
    """One report line: how far stops and targets filled from their levels (points, + = against the trader)."""
    sl, tp = summary["sl"], summary["tp"]
    where = "measured on real ticks" if mode == "real ticks" else f"{mode} path"
    return (
        f"SL/TP fills ({where}): {sl['fills']} SL ({sl['gapped']} gapped), {sl['mean_points']:+.1f} points "
        f"from the stop on average, p90 {sl['p90_points']:+.1f}, worst {sl['worst_points']:+.1f}; "
        f"{tp['fills']} TP ({tp['gapped']} gapped), {tp['mean_points']:+.1f} on average"
    )
