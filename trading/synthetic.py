"""A deterministic, seeded XAUUSD-like M15 market: the embedded default feed and the scale-test data.

What makes it look like gold (shapes taken from the 2025 real bars in ../shared/data):
- bars only while the New York based market is open (trading.sessions), so weekend and daily-break
  gaps are where a broker has them, DST included; the reopen bar opens with a small price gap;
- intraday volatility by New York hour (quiet Asia, busier London, the New York morning busiest);
- volatility regimes: a Markov chain over low / medium / high with persistent spells;
- a slowly mean-reverting log price squashed smoothly into a band ($2000-4500 by default), tick 0.01;
- Student-t bar returns; high/low drawn from the Brownian-bridge extremes of each bar;
- spread in points, wider after the daily open, before the close and in the high regime;
- tick_volume proportional to the bar's range (plus noise); real_volume 0.

Bars are produced in fixed chunks from one random stream, so `generate_bars(n)` is a prefix of
`generate_bars(m)` for n < m, and `SyntheticMarket` (one bar at a time) yields the same bars.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from trading.bars import BAR_SCHEMA, M15_SECONDS
from trading.sessions import ny_weekday_minute_epoch, open_mask_from_ny

DEFAULT_START = datetime(2024, 1, 7, 23, 0, tzinfo=UTC)  # Sunday 18:00 New York: a weekly open
DEFAULT_BAND = (2000.0, 4500.0)
CHUNK_BARS = 8192
OPEN_BARS_PER_WEEK = 460  # 115 trading hours
SLOTS_PER_WEEK = 7 * 24 * 4

# Relative volatility by New York hour (17 never trades). Asia (18-02) is quiet, London (03-07)
# busier, the New York morning (08-11) the busiest, the hour before the daily close the quietest.
NY_HOUR_VOL = np.array(
    [0.85, 0.95, 1.05, 1.15, 1.2, 1.2, 1.1, 1.25, 1.55, 1.85, 1.75, 1.35,
     1.05, 0.95, 0.85, 0.85, 0.6, 1.0, 0.85, 0.8, 0.8, 0.85, 0.85, 0.8]
)  # fmt: skip

REGIME_NAMES = ("low", "medium", "high")
REGIME_VOL = np.array([0.6, 1.0, 1.9])
REGIME_MEAN_BARS = np.array([400.0, 300.0, 120.0])  # mean spell length in bars (~4, ~3, ~1 days)
REGIME_NEXT = np.array([[0.0, 0.8, 0.2], [0.55, 0.0, 0.45], [0.25, 0.75, 0.0]])  # row: from, col: to
REGIME_SPREAD = np.array([15.0, 17.0, 22.0])  # base spread in points

MEAN_REVERSION = 3e-5  # per bar, on the latent log price: half-life ~23,000 bars (about a year)
DAILY_GAP_VOL = 0.0003
WEEKEND_GAP_VOL = 0.0015
SPREAD_MIN, SPREAD_MAX = 12, 80
T_DOF = 5.0


@dataclass(frozen=True, slots=True)
class _State:
    next_slot: int  # epoch seconds of the next M15 slot to consider
    last_open: int | None  # epoch seconds of the last emitted bar, None before the first
    level: float  # latent log level after the last bar's close
    regime: int
    regime_left: int  # bars left in the current regime spell; -1: draw the first spell's length


@dataclass(frozen=True, slots=True)
class _Spec:
    volatility: float  # per-bar log-return scale of a medium-regime, average hour
    mu: float
    half_width: float
    include_regime: bool


def _initial(start: datetime | None, start_price: float, band: tuple[float, float], regime: int) -> _State:
    start = DEFAULT_START if start is None else start
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be an aware datetime (UTC), got {start!r}")
    lo, hi = band
    if not 0 < lo < hi:
        raise ValueError(f"price band must satisfy 0 < low < high, got {band}")
    if not lo < start_price < hi:
        raise ValueError(f"start_price {start_price} must lie strictly inside the price band {band}")
    if regime not in (0, 1, 2):
        raise ValueError(f"start_regime must be 0 (low), 1 (medium) or 2 (high), got {regime}")
    ts = math.ceil(start.timestamp() / M15_SECONDS) * M15_SECONDS
    mu, half = _band(band)
    level = half * math.atanh((math.log(start_price) - mu) / half)
    return _State(ts, None, level, regime, -1)


def _band(band: tuple[float, float]) -> tuple[float, float]:
    lo, hi = math.log(band[0]), math.log(band[1])
    return (lo + hi) / 2, (hi - lo) / 2


def _open_slots(first_slot: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of the next n M15 opens while the market is open, and their New York hour."""
    weeks = n / OPEN_BARS_PER_WEEK + 1.1
    while True:
        epoch = first_slot + M15_SECONDS * np.arange(int(weeks * SLOTS_PER_WEEK), dtype=np.int64)
        weekday, minute = ny_weekday_minute_epoch(epoch)
        idx = np.flatnonzero(open_mask_from_ny(weekday, minute))
        if idx.size >= n:
            idx = idx[:n]
            return epoch[idx], minute[idx] // 60
        weeks *= 2  # only when a chunk starts inside a weekend and needs the extra days


def _regimes(rng: np.random.Generator, state: _State, n: int) -> tuple[np.ndarray, int, int]:
    """Regime per bar from spells: geometric-like lengths, then a jump by REGIME_NEXT."""
    out = np.empty(n, dtype=np.int8)
    regime, left = state.regime, state.regime_left
    spells = int(n / REGIME_MEAN_BARS.min()) + 8
    lengths = rng.exponential(1.0, spells)
    jumps = rng.random(spells)
    pos, k = 0, 0
    while pos < n:
        if left <= 0:
            if k >= spells:  # extremely unlikely; draw more from the same stream
                lengths, jumps, k = rng.exponential(1.0, spells), rng.random(spells), 0
            if left == 0:  # a spell ended: jump to another regime
                cum = REGIME_NEXT[regime].cumsum()
                regime = int(np.searchsorted(cum, jumps[k] * cum[-1], side="right"))
            left = max(1, int(lengths[k] * REGIME_MEAN_BARS[regime]))
            k += 1
        take = min(left, n - pos)
        out[pos : pos + take] = regime
        pos += take
        left -= take
    return out, regime, left


def _chunk(rng: np.random.Generator, state: _State, spec: _Spec, n: int) -> tuple[pl.DataFrame, _State]:
    epoch, ny_hour = _open_slots(state.next_slot, n)
    times = pl.Series("time", epoch * 1_000_000).cast(pl.Datetime("us", "UTC"))
    regime, last_regime, left = _regimes(rng, state, n)

    # fresh session after a gap: the daily break (1 h) or the weekend
    prev = np.empty(n, dtype=np.int64)
    prev[0] = epoch[0] - M15_SECONDS if state.last_open is None else state.last_open
    prev[1:] = epoch[:-1]
    gap = epoch - prev
    reopen = gap > M15_SECONDS
    weekend = gap > 6 * 3600

    reg_vol = REGIME_VOL[regime]
    sigma = spec.volatility * NY_HOUR_VOL[ny_hour] * reg_vol * np.exp(0.2 * rng.standard_normal(n))
    shocks = rng.standard_t(T_DOF, n) / math.sqrt(T_DOF / (T_DOF - 2))
    ret = sigma * shocks
    gap_ret = np.where(weekend, WEEKEND_GAP_VOL, DAILY_GAP_VOL) * reg_vol * rng.standard_normal(n)
    gap_ret = np.where(reopen, gap_ret, 0.0)

    # latent level: close_i = phi * (close_{i-1} + gap_i) + ret_i, solved in closed form per chunk
    phi = 1.0 - MEAN_REVERSION
    u = phi * gap_ret + ret
    powers = phi ** np.arange(n, dtype=np.float64)
    close_x = powers * (phi * state.level + np.cumsum(u / powers))
    open_x = np.empty(n)
    open_x[0] = state.level + gap_ret[0]
    open_x[1:] = close_x[:-1] + gap_ret[1:]
    drift = close_x - open_x

    # extremes of a Brownian bridge from 0 to `drift` with variance sigma^2 over the bar
    two_var = 2.0 * sigma * sigma
    up = 0.5 * (drift + np.sqrt(drift * drift - two_var * np.log(rng.random(n) + 1e-300)))
    down = 0.5 * (drift - np.sqrt(drift * drift - two_var * np.log(rng.random(n) + 1e-300)))

    def price(x: np.ndarray) -> np.ndarray:
        return np.round(np.exp(spec.mu + spec.half_width * np.tanh(x / spec.half_width)), 2)

    o, c = price(open_x), price(close_x)
    h = np.maximum(price(open_x + up), np.maximum(o, c))
    lo = np.minimum(price(open_x + down), np.minimum(o, c))

    spread = REGIME_SPREAD[regime] + 2.5 * np.abs(rng.standard_normal(n))
    spread += np.where(ny_hour == 18, 12.0 + 25.0 * reopen, 0.0)  # rollover: the first hour after the open
    spread += np.where(ny_hour == 16, 6.0, 0.0)  # thin last hour before the daily close
    spread = np.clip(np.rint(spread), SPREAD_MIN, SPREAD_MAX).astype(np.int32)

    range_bp = (h - lo) / c * 1e4
    tick_volume = np.maximum(1, np.rint(50 + 250 * range_bp**0.9 * np.exp(0.25 * rng.standard_normal(n))))

    columns: dict[str, pl.Series | np.ndarray] = {
        "time": times,
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "tick_volume": tick_volume.astype(np.int64),
        "spread": spread,
        "real_volume": np.zeros(n, dtype=np.int64),
    }
    if spec.include_regime:
        columns["regime"] = regime
    frame = pl.DataFrame(columns).cast(BAR_SCHEMA)  # type: ignore[arg-type]
    new_state = _State(int(epoch[-1]) + M15_SECONDS, int(epoch[-1]), float(close_x[-1]), last_regime, left)
    return frame, new_state


class _Stream:
    """The one generator behind both entry points: fixed-size chunks from one random stream."""

    def __init__(
        self,
        seed: int,
        start: datetime | None,
        start_price: float,
        volatility: float,
        price_band: tuple[float, float],
        start_regime: int,
        include_regime: bool,
    ) -> None:
        if not volatility > 0:
            raise ValueError(f"volatility must be positive, got {volatility}")
        self._rng = np.random.default_rng(seed)
        self._state = _initial(start, start_price, price_band, start_regime)
        mu, half = _band(price_band)
        self._spec = _Spec(volatility, mu, half, include_regime)

    def next_chunk(self) -> pl.DataFrame:
        frame, self._state = _chunk(self._rng, self._state, self._spec, CHUNK_BARS)
        return frame


def generate_bars(
    n: int,
    seed: int = 7,
    start: datetime | None = None,
    start_price: float = 3300.0,
    *,
    volatility: float = 0.001,
    price_band: tuple[float, float] = DEFAULT_BAND,
    start_regime: int = 1,
    include_regime: bool = False,
) -> pl.DataFrame:
    """n synthetic M15 bars in BAR_SCHEMA (time UTC), the first at the first open slot >= start.

    The same arguments always give the same frame, and a shorter run is a prefix of a longer one.
    `include_regime` appends the true regime (Int8: 0 low, 1 medium, 2 high) as a last column.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    stream = _Stream(seed, start, start_price, volatility, price_band, start_regime, include_regime)
    chunks: list[pl.DataFrame] = []
    have = 0
    while have < n:
        chunk = stream.next_chunk()
        chunks.append(chunk)
        have += chunk.height
    if not chunks:
        schema = dict(BAR_SCHEMA) | ({"regime": pl.Int8()} if include_regime else {})
        return pl.DataFrame(schema=schema)
    return pl.concat(chunks, rechunk=True).head(n)


class SyntheticMarket:
    """A live-like feed: the same bars as `generate_bars` with the same arguments, handed out in order."""

    def __init__(
        self,
        seed: int = 7,
        start: datetime | None = None,
        start_price: float = 3300.0,
        *,
        volatility: float = 0.001,
        price_band: tuple[float, float] = DEFAULT_BAND,
        start_regime: int = 1,
    ) -> None:
        self._stream = _Stream(seed, start, start_price, volatility, price_band, start_regime, False)
        self._buffer = self._stream.next_chunk()
        self._pos = 0
        self._emitted = 0
        self._last: pl.DataFrame | None = None

    def take(self, n: int) -> pl.DataFrame:
        """The next n bars as one frame."""
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        parts: list[pl.DataFrame] = []
        need = n
        while need > 0:
            if self._pos >= self._buffer.height:
                self._buffer, self._pos = self._stream.next_chunk(), 0
            part = self._buffer.slice(self._pos, need)
            parts.append(part)
            self._pos += part.height
            need -= part.height
        if not parts:
            return pl.DataFrame(schema=BAR_SCHEMA)
        out = pl.concat(parts) if len(parts) > 1 else parts[0]
        self._emitted += n
        self._last = out.tail(1)
        return out

    def next_bar(self) -> pl.DataFrame:
        """The next bar as a one-row frame."""
        return self.take(1)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        while True:
            yield self.next_bar()

    @property
    def bars_emitted(self) -> int:
        return self._emitted

    @property
    def last_time(self) -> datetime | None:
        return None if self._last is None else self._last["time"][0]

    @property
    def last_close(self) -> float | None:
        return None if self._last is None else float(self._last["close"][0])

    def next_open_time(self) -> datetime:
        """Open time of the bar `next_bar` will return (UTC)."""
        if self._pos >= self._buffer.height:
            self._buffer, self._pos = self._stream.next_chunk(), 0
        opens: datetime = self._buffer["time"][self._pos]
        return opens
