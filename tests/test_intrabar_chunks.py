"""The generated path walked a chunk of bars at a time (`GeneratedPath`, `walk_paths`) gives bit for bit
the prices and times of the per-bar walk (`walk_vertices`, `synthesise_path`: the reference), on the real bars
and on edge bars, for both vertex orders and several tick counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.bars import BAR_SCHEMA
from trading.broker.intrabar import synthesise_path, walk_vertices
from trading.intrabar import (
    BAR_MS,
    CHUNK_BARS,
    GeneratedPath,
    M1Detail,
    TickArrays,
    _minute_walk,
    bar_open_ms,
    walk_all,
)


def reference_ticks(
    bars: pl.DataFrame, bar: int, n: int, order: str, *, point: float = 0.01, digits: int = 2
) -> TickArrays:
    o, h, lo, c = (float(x) for x in bars.select("open", "high", "low", "close").row(bar))
    if order == "direction":
        bid = walk_vertices((o, lo, h, c) if c >= o else (o, h, lo, c), n, digits)
    else:
        bid = synthesise_path((o, h, lo, c), n, digits)
    ask = np.round(bid + float(bars["spread"][bar]) * point, digits)
    times = bar_open_ms(bars)[bar] + (np.arange(n, dtype=np.int64) * BAR_MS) // n
    return times, bid, ask


def assert_same(bars: pl.DataFrame, n: int, order: str, rows: range | list[int]) -> None:
    path = GeneratedPath(bars, n, order=order)
    for i in rows:
        got, want = path.ticks(i), reference_ticks(bars, i, n, order)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert np.array_equal(g, w), (i, g, w)  # exact: no tolerance


@pytest.mark.parametrize("order", ["direction", "nearer"])
@pytest.mark.parametrize("n", [4, 7, 60])
def test_chunked_walk_equals_the_per_bar_walk_on_the_real_bars(
    shared_bars: pl.DataFrame, order: str, n: int
) -> None:
    bars = shared_bars.head(3 * CHUNK_BARS + 17)  # several chunks and a partial last one
    assert_same(bars, n, order, range(bars.height))


def edge_bars() -> pl.DataFrame:
    start = datetime(2024, 1, 2, tzinfo=UTC)
    ohlc = [
        (2000.0, 2000.0, 2000.0, 2000.0),  # flat
        (2000.0, 2001.0, 1999.0, 2000.0),  # doji: equal legs, the remainders tie
        (2000.0, 2000.0, 1990.0, 1990.0),  # opens at its high, closes at its low
        (2000.0, 2010.0, 2000.0, 2010.0),  # opens at its low, closes at its high
        (2000.0, 2000.01, 1999.99, 2000.0),  # one point each way
        (2000.0, 2003.0, 1997.0, 2000.0),  # the nearer extreme is a tie
        (2000.33, 2000.34, 2000.33, 2000.34),
        (1999.995, 2000.005, 1999.985, 2000.0),  # prices off the 2-digit grid
    ]
    return pl.DataFrame(
        {
            "time": [start + timedelta(minutes=15 * i) for i in range(len(ohlc))],
            "open": [r[0] for r in ohlc],
            "high": [r[1] for r in ohlc],
            "low": [r[2] for r in ohlc],
            "close": [r[3] for r in ohlc],
            "tick_volume": [10] * len(ohlc),
            "spread": [0, 20, 35, 1, 0, 7, 12, 3],
            "real_volume": [0] * len(ohlc),
        },
        schema=BAR_SCHEMA,
    )


@pytest.mark.parametrize("order", ["direction", "nearer"])
@pytest.mark.parametrize("n", [4, 5, 6, 7, 60, 61])
def test_chunked_walk_equals_the_per_bar_walk_on_edge_bars(order: str, n: int) -> None:
    bars = edge_bars()
    assert_same(bars, n, order, range(bars.height))


def test_bars_may_be_asked_for_in_any_order(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.head(2 * CHUNK_BARS + 5)
    rows = [2 * CHUNK_BARS + 4, 0, CHUNK_BARS, CHUNK_BARS - 1, 5, 2 * CHUNK_BARS, 3]
    assert_same(bars, 60, "direction", rows)
    with pytest.raises(IndexError):
        GeneratedPath(bars, 60).ticks(bars.height)


def test_handed_out_rows_are_read_only(shared_bars: pl.DataFrame) -> None:
    times, bid, ask = GeneratedPath(shared_bars.head(10), 60).ticks(3)
    for a in (times, bid, ask):
        with pytest.raises(ValueError):
            a[0] = 0


def test_m1_detail_fallback_bars_use_the_same_walk(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.head(40)
    m1 = bars.head(0)  # no detail at all: every bar falls back to the generated path
    detail = M1Detail(bars, m1, ticks_per_bar=60)
    got = walk_all(detail, bars.height)
    want = [reference_ticks(bars, i, 60, "direction") for i in range(bars.height)]
    for k in range(3):
        assert np.array_equal(got[k], np.concatenate([w[k] for w in want]))


def test_m1_detail_walked_by_chunk_equals_the_per_bar_walk(shared_bars: pl.DataFrame) -> None:
    bars = shared_bars.head(2 * CHUNK_BARS + 50)
    fine = GeneratedPath(bars, 60)
    times = np.concatenate([fine.ticks(i)[0] for i in range(bars.height)])
    minutes = pl.DataFrame({"time": times // 60_000 * 60_000}).unique(maintain_order=True)["time"].to_numpy()
    rng = np.random.default_rng(3)
    o = 2000 + rng.normal(0, 1, minutes.size).cumsum()
    c = o + rng.normal(0, 0.5, minutes.size)
    m1 = pl.DataFrame(
        {
            "time": pl.Series(minutes)
            .cast(pl.Datetime("ms"))
            .dt.replace_time_zone("UTC")
            .dt.cast_time_unit("us"),
            "open": o,
            "high": np.maximum(o, c) + rng.random(minutes.size),
            "low": np.minimum(o, c) - rng.random(minutes.size),
            "close": c,
            "tick_volume": 4,
            "spread": rng.integers(5, 40, minutes.size).astype(np.int32),
            "real_volume": 0,
        },
        schema=BAR_SCHEMA,
    )
    m1 = m1.filter((pl.int_range(pl.len()) // 15) % 97 != 5)  # some bars without detail: the generated path
    detail = M1Detail(bars, m1, ticks_per_bar=60)
    ohlc = m1.select("open", "high", "low", "close").to_numpy()
    spread = m1["spread"].to_numpy().astype(np.float64) * 0.01
    ms = bar_open_ms(m1)
    opens = bar_open_ms(bars)
    fallback = 0
    for i in [*range(bars.height), 0, CHUNK_BARS + 3, 7]:
        a, b = np.searchsorted(ms, [opens[i], opens[i] + BAR_MS])
        if b > a:
            want = _minute_walk(ohlc[a:b], spread[a:b], ms[a:b], 2)
        else:
            want, fallback = reference_ticks(bars, i, 60, "direction"), fallback + 1
        for g, w in zip(detail.ticks(i), want, strict=True):
            assert g.dtype == w.dtype and np.array_equal(g, w), i
    assert fallback > 0
