"""What every intrabar mode shares: the `TickPath` protocol, its tick arrays and the bars' millisecond clock."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl

BAR_MS = 15 * 60 * 1000
MINUTE_MS = 60 * 1000
TICK_COLUMNS = ("time_msc", "bid", "ask")

TickArrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # times (int64 ms UTC), bid, ask


class IntrabarDataError(ValueError):
    """A tick or M1 detail file that cannot be used with the bars (one line saying why)."""


class TickPath(Protocol):
    """The ticks of each M15 bar."""

    mode: str

    def ticks(self, bar: int) -> TickArrays: ...

    def detail_share(self) -> float: ...

    def counts(self) -> np.ndarray: ...

    def segment_ticks(self, bar: int) -> int: ...


def bar_open_ms(bars: pl.DataFrame) -> np.ndarray:
    return bars["time"].dt.epoch("ms").to_numpy().astype(np.int64)
