"""Market feeds that give the paper broker its prices.

- `ReplayFeed` replays a bars frame or file: it releases ticks synthesised along each bar's
  intrabar path as (scaled) time passes, and builds the forming bar from the ticks released so
  far, so nothing of a bar's future is visible early.
- `SyntheticFeed` is a replay over bars from `trading.synthetic.generate_bars`.
- `DryRunFeed` takes ticks and bars from another broker (MetaTrader5) while the paper broker
  fills the orders.

Every frame a feed returns is a BAR_SCHEMA frame in UTC, oldest first, whose last row may be the
still-forming bar (drop it with `trading.bars.closed_bars(frame, feed.now())`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from trading.bars import BAR_SCHEMA, empty_bars, load_bars, validate_bars
from trading.broker.base import Broker, BrokerError
from trading.domain import Tick
from trading.intrabar import GeneratedPath, TickPath
from trading.timezones import DEFAULT_SERVER_TZ, at_ms, ms_of, utc_now

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]


@runtime_checkable
class Feed(Protocol):
    """A source of prices for the paper broker."""

    async def next_tick(self) -> Tick | None:
        """The next tick in order, waiting until it is due; None once the feed has ended."""
        ...

    async def tick(self) -> Tick | None:
        """The latest tick released so far (None before the first), without waiting."""
        ...

    async def bars(self, count: int) -> pl.DataFrame:
        """The latest `count` bars: closed bars plus the forming bar as it stands now."""
        ...

    def now(self) -> datetime:
        """The feed's current market time (aware UTC)."""
        ...


class ReplayFeed:
    """Replays bars tick by tick along an intrabar path (`trading.intrabar`: generated from the bar,
    M1 detail or real ticks; the default is the generated path with `ticks_per_bar` ticks).

    `speed` scales time: 1 = real time, 3000 = a 15-minute bar in 0.3 s (a trading day in about
    30 s); 0 = no clock at all, ticks are released only by `next_tick()` (one at a time) or
    `advance()` / `advance_bars()`. The first `history` bars count as already closed when the
    replay starts, so a strategy has a warm-up window; `resume_after` (a market time) starts the
    replay at the first tick after it instead, so a restarted market never goes back in time.
    With `skip_gaps` (default) weekend and daily-break gaps take no replay time.
    """

    def __init__(
        self,
        bars: pl.DataFrame | str | Path,
        speed: float = 1.0,
        ticks_per_bar: int = 12,
        *,
        history: int = 0,
        timeframe_minutes: int = 15,
        server_tz: str = DEFAULT_SERVER_TZ,
        skip_gaps: bool = True,
        point: float = 0.01,
        digits: int = 2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        path: TickPath | Callable[[pl.DataFrame], TickPath] | None = None,
        resume_after: datetime | None = None,
    ) -> None:
        frame = load_bars(bars, server_tz) if isinstance(bars, str | Path) else validate_bars(bars)
        if frame.height == 0:
            raise ValueError("a replay needs at least one bar")
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"speed must be 0 (manual) or a positive factor, got {speed}")
        if ticks_per_bar < 4:
            raise ValueError(
                f"ticks_per_bar must be at least 4 (open, high, low, close), got {ticks_per_bar}"
            )
        if not 0 <= history <= frame.height:
            raise ValueError(f"history must be between 0 and the {frame.height} bars, got {history}")
        self.frame = frame
        self.speed = float(speed)
        self.history = history
        self.point = point
        self.digits = digits
        self._clock = clock
        self._sleep = sleep
        self._bar_length = timedelta(minutes=timeframe_minutes)
        if path is None:
            path = GeneratedPath(
                frame, ticks_per_bar, point=point, digits=digits, bar_ms=timeframe_minutes * 60_000
            )
        elif not hasattr(path, "ticks"):
            path = path(frame)
        self.path: TickPath = path  # type: ignore[assignment]
        self._segment: Callable[[int], int] | None = getattr(path, "segment_ticks", None)
        self.ticks_per_bar = getattr(self.path, "ticks_per_bar", ticks_per_bar)
        counts = self.path.counts()
        self._uniform = bool(counts.size and (counts == counts[0]).all())
        self._per_bar = int(counts[0]) if counts.size else ticks_per_bar
        self._cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._times: list[datetime] = frame["time"].to_list()
        self._open_ms = frame["time"].dt.epoch("ms").to_numpy().astype(np.int64)
        self._total = int(self._cum[-1])
        # replay seconds at which each bar starts; bars before `history` are already out
        bar_seconds = self._bar_length.total_seconds()
        if skip_gaps:
            offsets = (np.arange(frame.height) - history) * bar_seconds
        else:
            epoch = self._open_ms / 1000
            offsets = epoch - (epoch[history] if history < frame.height else epoch[-1] + bar_seconds)
        self._offsets = offsets.astype(np.float64)
        self._path_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cached_index = -1
        self._cached_tick: Tick | None = None
        start = int(self._cum[history])
        if resume_after is not None:
            start = max(start, self.first_index_after(resume_after))
        self._released = start  # ticks visible to the market
        self._delivered = start  # ticks handed out by next_tick
        self._started_at: float | None = None

    # ---- public ------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.path.mode

    @property
    def finished(self) -> bool:
        """Every tick has been handed out by `next_tick()`."""
        return self._delivered >= self._total

    @property
    def delivered(self) -> int:
        """How many ticks (counted from the file's first bar) `next_tick()` has handed out."""
        return self._delivered

    def bar_of(self, index: int) -> int:
        """The bar the tick at `index` belongs to."""
        if self._uniform:
            return index // self._per_bar
        return int(np.searchsorted(self._cum, index, side="right")) - 1

    def first_index_after(self, moment: datetime) -> int:
        """Index of the first tick later than `moment` (the total when none is)."""
        ms = ms_of(moment)
        bar = int(np.searchsorted(self._open_ms, ms, side="right")) - 1
        if bar < 0:
            return 0
        times = self._bar_ticks(bar)[0]
        k = int(np.searchsorted(times, ms, side="right"))
        return int(self._cum[bar]) + k

    def bar_start(self, bar: int) -> int:
        """Index of the first tick of `bar`."""
        return int(self._cum[bar])

    def bar_ticks(self, bar: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times (ms UTC), bids and asks of every tick of `bar`."""
        return self._bar_ticks(bar)

    def replay_seconds(self, index: int) -> float:
        """Replay time (market seconds with gaps skipped) at which the tick at `index` is due."""
        return self._offset_of(index)

    async def next_tick(self) -> Tick | None:
        self._catch_up()
        if self._delivered >= self._total:
            return None
        if self._delivered >= self._released:
            if self.speed > 0:
                due = self._started_at + self._offset_of(self._delivered) / self.speed  # type: ignore[operator]
                wait = due - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            self._released = max(self._released, self._delivered + 1)
        tick = self._tick_at(self._delivered)
        self._delivered += 1
        return tick

    def skip_to(self, index: int) -> None:
        """Hand out nothing up to `index` (a manual feed's fast-forward: the ticks are taken as seen)."""
        if not self._delivered <= index <= self._total:
            raise ValueError(f"cannot skip from tick {self._delivered} to {index}")
        self._delivered = index
        self._released = max(self._released, index)

    def next_tick_now(self) -> Tick | None:
        """`next_tick()` of a manual feed (speed 0), without the coroutine."""
        if self._delivered >= self._total:
            return None
        tick = self._tick_at(self._delivered)
        self._delivered += 1
        self._released = max(self._released, self._delivered)
        return tick

    async def tick(self) -> Tick | None:
        self._catch_up()
        return self._tick_at(self._released - 1) if self._released > 0 else None

    async def bars(self, count: int) -> pl.DataFrame:
        self._catch_up()
        return self.bars_now(count)

    def bars_now(self, count: int) -> pl.DataFrame:
        """`bars()` without waiting: closed bars plus the forming bar built from released ticks."""
        if count < 1:
            raise ValueError(f"bar count must be at least 1, got {count}")
        if self._released == 0:
            return empty_bars()
        current = self.bar_of(self._released - 1)
        done = self._released - int(self._cum[current])
        first = max(0, current + 1 - count)
        if done == int(self._cum[current + 1] - self._cum[current]):
            return self.frame.slice(first, current + 1 - first)
        closed = self.frame.slice(first, current - first)
        return pl.concat([closed, self._forming_row(current, done)])

    def now(self) -> datetime:
        """Market time: the time of the latest released tick (the first bar's open before any)."""
        self._catch_up()
        if self._released == 0:
            return self._times[0]
        return self._tick_time(self._released - 1)

    def advance(self, ticks: int = 1) -> None:
        """Release `ticks` more ticks (any speed); `next_tick()` then hands them out in order."""
        if ticks < 0:
            raise ValueError("cannot release a negative number of ticks")
        self._started()
        self._released = min(self._total, self._released + ticks)

    def advance_bars(self, bars: int = 1) -> None:
        """Release ticks up to the end of the bar `bars` bars on from the last complete one."""
        if bars < 0:
            raise ValueError("cannot release a negative number of bars")
        self._started()
        complete = int(np.searchsorted(self._cum, self._released, side="right")) - 1
        self._released = int(self._cum[min(self.frame.height, complete + bars)])

    # ---- internals ---------------------------------------------------------------------------

    def _started(self) -> None:
        if self._started_at is None:
            self._started_at = self._clock()

    def _catch_up(self) -> None:
        """Release every tick whose replay time has come (speed > 0 only)."""
        self._started()
        if self.speed <= 0 or self._released >= self._total:
            return
        elapsed = (self._clock() - self._started_at) * self.speed  # type: ignore[operator]
        bar = int(np.searchsorted(self._offsets, elapsed, side="right")) - 1
        if bar < 0:
            return
        times = self._bar_ticks(bar)[0]
        into_ms = (elapsed - self._offsets[bar]) * 1000 + self._open_ms[bar]
        within = max(1, int(np.searchsorted(times, into_ms, side="right")))
        due = min(self._total, int(self._cum[bar]) + within)
        self._released = max(self._released, due)

    def _offset_of(self, index: int) -> float:
        bar = self.bar_of(index)
        k = index - int(self._cum[bar])
        return float(self._offsets[bar]) + (int(self._bar_ticks(bar)[0][k]) - int(self._open_ms[bar])) / 1000

    def _bar_ticks(self, bar: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        got = self._path_cache.get(bar)
        if got is None:
            if len(self._path_cache) > 8:
                self._path_cache.clear()
            got = self.path.ticks(bar)
            self._path_cache[bar] = got
        return got

    def _path(self, bar: int) -> np.ndarray:
        return self._bar_ticks(bar)[1]

    def _tick_time(self, index: int) -> datetime:
        bar = self.bar_of(index)
        ms = int(self._bar_ticks(bar)[0][index - int(self._cum[bar])])
        return at_ms(ms)

    def _tick_at(self, index: int) -> Tick:
        # the broker asks for the latest tick several times a step
        if index == self._cached_index and self._cached_tick is not None:
            return self._cached_tick
        tick = self._make_tick(index)
        self._cached_index, self._cached_tick = index, tick
        return tick

    def _make_tick(self, index: int) -> Tick:
        bar = self.bar_of(index)
        times, bid, ask = self._bar_ticks(bar)
        k = index - int(self._cum[bar])
        walked = k % self._segment_ticks(bar) != 0  # not the first tick of a walk (a bar, a minute)
        return Tick(at_ms(int(times[k])), float(bid[k]), float(ask[k]), walked)

    def _segment_ticks(self, bar: int) -> int:
        segment = self._segment
        return (
            1 if segment is None else max(1, int(segment(bar)))
        )  # a path that does not say: every tick may jump

    def _forming_row(self, bar: int, done: int) -> pl.DataFrame:
        seen = self._path(bar)[:done]
        row = self.frame.row(bar, named=True)
        share = done / int(self._cum[bar + 1] - self._cum[bar])
        row.update(
            open=float(seen[0]),
            high=float(seen.max()),
            low=float(seen.min()),
            close=float(seen[-1]),
            tick_volume=round(row["tick_volume"] * share),
            real_volume=round(row["real_volume"] * share),
        )
        return pl.DataFrame([row], schema=BAR_SCHEMA)


class SyntheticFeed(ReplayFeed):
    """A replay over `n_bars` bars from the synthetic market (`trading.synthetic.generate_bars`)."""

    def __init__(
        self, n_bars: int = 2_000, seed: int = 0, start: datetime | None = None, **replay: Any
    ) -> None:
        from trading.synthetic import generate_bars  # imported here: the module is optional

        frame = generate_bars(n_bars, seed) if start is None else generate_bars(n_bars, seed, start=start)
        super().__init__(frame, **replay)


class DryRunFeed:
    """Real prices from another broker (MetaTrader5) for a paper broker that fills the orders.

    `next_tick()` polls the source every `poll_interval` seconds and returns each new tick; a
    failed poll is logged and retried (it never ends the feed).
    """

    def __init__(self, source: Broker, poll_interval: float = 1.0, sleep: Sleep = asyncio.sleep) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self.source = source
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._last: Tick | None = None

    async def connect(self) -> None:
        if not self.source.connected:
            await self.source.connect()

    async def next_tick(self) -> Tick | None:
        while True:
            try:
                tick = await self.source.tick()
            except BrokerError as exc:
                log.warning("dry-run feed: price poll failed: %s", exc)
            else:
                if tick != self._last:
                    self._last = tick
                    return tick
            await self._sleep(self.poll_interval)

    async def tick(self) -> Tick | None:
        self._last = await self.source.tick()
        return self._last

    async def bars(self, count: int) -> pl.DataFrame:
        return await self.source.bars(count)

    def now(self) -> datetime:
        return utc_now()
