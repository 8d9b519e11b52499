"""Bar-frame loading and validation: bad rows are named and refused; gaps are fine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading.bars import (
    BAR_SCHEMA,
    MT5_RATES_DTYPE,
    BarValidationError,
    closed_bars,
    from_mt5_rates,
    load_bars,
    to_mt5_rates,
    validate_bars,
)
from trading.timezones import ServerClock


def make_bars(n: int = 5, start: datetime = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)) -> pl.DataFrame:
    times = [start + timedelta(minutes=15 * i) for i in range(n)]
    closes = [2900.0 + i for i in range(n)]
    return pl.DataFrame(
        {
            "time": times,
            "open": [c - 0.5 for c in closes],
            "high": [c + 1.0 for c in closes],
            "low": [c - 1.5 for c in closes],
            "close": closes,
            "tick_volume": [100] * n,
            "spread": [20] * n,
            "real_volume": [0] * n,
        }
    ).cast(BAR_SCHEMA)


def test_valid_frame_passes_and_keeps_schema():
    out = validate_bars(make_bars())
    assert out.schema == pl.Schema(BAR_SCHEMA)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("close", float("nan"), "close is missing or NaN"),
        ("open", float("inf"), "open is infinite"),
        ("low", 0.0, "low is zero or negative"),
        ("high", -1.0, "high is zero or negative"),
        ("high", 2901.0, "high is below max(open, close)"),
        ("low", 2902.5, "low is above min(open, close)"),
    ],
)
def test_bad_price_is_named_with_row(column, value, problem):
    frame = (
        make_bars()
        .with_row_index()
        .with_columns(
            pl.when(pl.col("index") == 2).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
        )
        .drop("index")
    )
    with pytest.raises(BarValidationError) as err:
        validate_bars(frame)
    assert "row 2" in str(err.value)
    assert problem in str(err.value)


def test_duplicate_and_backwards_time_refused():
    frame = make_bars()
    dup = pl.concat([frame.head(3), frame.slice(2, 1), frame.tail(2)])
    with pytest.raises(BarValidationError, match="row 3.*not after the previous bar"):
        validate_bars(dup)
    backwards = frame.reverse()
    with pytest.raises(BarValidationError, match="row 1"):
        validate_bars(backwards)


def test_missing_column_and_naive_time_refused():
    with pytest.raises(BarValidationError, match="missing column"):
        validate_bars(make_bars().drop("spread"))
    naive = make_bars().with_columns(pl.col("time").dt.replace_time_zone(None))
    with pytest.raises(BarValidationError, match="Datetime"):
        validate_bars(naive)


def test_weekend_gap_is_not_an_error():
    a = make_bars(3, datetime(2025, 3, 7, 21, 0, tzinfo=UTC))
    b = make_bars(3, datetime(2025, 3, 9, 22, 0, tzinfo=UTC))
    assert validate_bars(pl.concat([a, b])).height == 6


def test_load_real_file_in_utc(shared_bars):
    assert shared_bars.height == 12_000
    assert shared_bars.schema == pl.Schema(BAR_SCHEMA)
    # daily break 17:00-18:00 New York: bars after a gap start at 18:00 NY
    ny = shared_bars.select(
        pl.col("time").dt.convert_time_zone("America/New_York").alias("ny"),
        pl.col("time").diff().alias("gap"),
    ).filter(pl.col("gap") > pl.duration(minutes=15))
    assert (ny["ny"].dt.hour() == 18).mean() > 0.95


def test_csv_roundtrip_with_server_time(tmp_path, shared_bars_path):
    src = pl.read_parquet(shared_bars_path).head(50)
    path = tmp_path / "bars.csv"
    src.with_columns(pl.col("time").dt.strftime("%Y-%m-%d %H:%M:%S")).write_csv(path)
    from_csv = load_bars(path)
    from_parquet = load_bars(shared_bars_path).head(50)
    assert from_csv.equals(from_parquet)


def test_csv_with_bad_row_names_it(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "time,open,high,low,close,tick_volume,spread,real_volume\n"
        "2025-01-06 10:00:00,2650,2651,2649,2650.5,10,20,0\n"
        "2025-01-06 10:15:00,2650.5,2650.0,2649,2650.7,10,20,0\n"
    )
    with pytest.raises(BarValidationError, match="row 1.*high is below"):
        load_bars(path)


def test_unknown_file_type_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_bars(tmp_path / "nope.parquet")
    p = tmp_path / "bars.xlsx"
    p.write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        load_bars(p)


def test_mt5_rates_roundtrip():
    clock = ServerClock.parse("NY+7")
    frame = make_bars(10)
    rates = to_mt5_rates(frame, clock)
    assert rates.dtype == MT5_RATES_DTYPE
    # 01:00 UTC on 3 March 2025 is 20:00 New York (EST) -> 03:00 server
    assert datetime(1970, 1, 1) + timedelta(seconds=int(rates["time"][0])) == datetime(2025, 3, 3, 3, 0)
    back = from_mt5_rates(rates, clock)
    assert back.equals(frame)
    assert from_mt5_rates(np.empty(0, dtype=MT5_RATES_DTYPE), clock).height == 0


def test_closed_bars_drops_forming_bar():
    frame = make_bars(4)
    last_open = frame["time"][-1]
    assert closed_bars(frame, last_open + timedelta(minutes=14)).height == 3
    assert closed_bars(frame, last_open + timedelta(minutes=15)).height == 4
