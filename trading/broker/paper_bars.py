"""The paper market's bars: `bars()` (the feed's, else those given to `update_bar`), and the market bar by
bar (`update_bar`/`apply_bar`): positions whose SL/TP a bar's intrabar path reaches are closed, the price
is left at the bar's close, and the bar is kept for `bars()`.

`PaperBars` is a part of `PaperBroker` (a mixin: it reads and sets the broker's own state, `PaperHost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from trading.bars import BAR_COLUMNS, BAR_SCHEMA, empty_bars
from trading.broker.base import BrokerError, BrokerErrorKind, InvalidOrder
from trading.broker.intrabar import stop_hit, touch_fraction
from trading.broker.paper_host import PaperHost
from trading.domain import Deal, DealReason, Side, Tick

BAR_HISTORY_LIMIT = 20_000


class PaperBars(PaperHost):
    """The bar-by-bar path of `PaperBroker`."""

    async def bars(self, count: int, timeframe_minutes: int = 15) -> pl.DataFrame:
        """Bars from the feed when there is one, else the bars given to `update_bar()`."""
        self._require_connected()
        if count < 1:
            raise InvalidOrder(f"bar count must be at least 1, got {count}")
        if timeframe_minutes != self.config.timeframe_minutes:
            raise BrokerError(
                BrokerErrorKind.INVALID_REQUEST,
                f"the paper market has M{self.config.timeframe_minutes} bars only, not M{timeframe_minutes}",
            )
        if self.feed is not None:
            return await self.feed.bars(count)
        if not self._bars:
            return empty_bars()
        return pl.DataFrame(self._bars[-count:], schema=BAR_SCHEMA)

    def apply_bar(self, bar: Mapping[str, Any]) -> list[Deal]:
        """Walk one bar (a BAR_SCHEMA row as a mapping, bid prices, time = open time UTC): close
        positions whose SL/TP the intrabar path reaches, then leave the price at the bar's close.
        Positions opened inside the bar are checked against the whole bar (conservative).
        A bar not after the last one applied is ignored. Returns the broker-side deals."""
        start: datetime = bar["time"]
        if not isinstance(start, datetime) or start.tzinfo is None:
            raise ValueError(f"bar time must be an aware UTC datetime, got {start!r}")
        if self._bars and start <= self._bars[-1]["time"]:
            return []
        prices = (float(bar["open"]), float(bar["high"]), float(bar["low"]), float(bar["close"]))
        spread_points = bar.get("spread")
        if spread_points is None:
            spread_points = self.config.spread_points
        spread = int(spread_points) * self.spec.point
        length = timedelta(minutes=self.config.timeframe_minutes)
        deals: list[Deal] = []
        for ticket in sorted(self._positions):
            pos = self._positions[ticket]
            if pos.open_time >= start + length:
                continue
            hit = stop_hit(pos.side, pos.sl, pos.tp, prices, spread)
            if hit is None:
                continue
            shift = spread if pos.side is Side.SELL else 0.0
            path = (prices[0] + shift, prices[1] + shift, prices[2] + shift, prices[3] + shift)
            fraction = touch_fraction(path, hit[1]) or 0.0
            when = max(start + length * fraction, pos.open_time)
            level = pos.sl if hit[0] is DealReason.SL else pos.tp
            # stop_hit already gives the level when the path crossed it and the open when the bar gapped
            deals.append(self._level_close(pos, hit[0], level, hit[1], hit[1] != path[0], when))
        close = self.spec.round_price(prices[3])
        tick = Tick(start + length - timedelta(seconds=1), close, self.spec.round_price(close + spread))
        latest: Tick | None = tick  # mypy would take a plain assignment here as declaring `_tick` a Tick
        self._tick = latest
        deals += self._stop_out(tick.time)
        self._remember_bar(bar, int(spread_points))
        if deals:
            self._save()
        return deals

    async def update_bar(self, bar: Mapping[str, Any]) -> list[Deal]:
        """`apply_bar` for async callers."""
        return self.apply_bar(bar)

    def _remember_bar(self, bar: Mapping[str, Any], spread_points: int) -> None:
        row = {c: bar.get(c, 0) for c in BAR_COLUMNS}
        row["spread"] = spread_points
        self._bars.append(row)
        if len(self._bars) > BAR_HISTORY_LIMIT:
            del self._bars[: len(self._bars) - BAR_HISTORY_LIMIT]
