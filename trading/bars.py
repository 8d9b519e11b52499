"""The bar frame: schema mirroring MT5 `copy_rates_*`, loaders and validation.

A *bar frame* is a Polars DataFrame with, in this order:

    time         Datetime("us", "UTC")  bar open time, converted from broker server time
    open, high, low, close   Float64
    tick_volume  Int64
    spread       Int32                  points (0.01 USD for XAUUSD)
    real_volume  Int64

Frames are validated on the way in; a bad row is named and the whole frame is refused.
Weekend and daily-break gaps are normal and never errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading.timezones import DEFAULT_SERVER_TZ, ServerClock

M15_SECONDS = 900

BAR_SCHEMA: dict[str, pl.DataType] = {
    "time": pl.Datetime("us", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "tick_volume": pl.Int64(),
    "spread": pl.Int32(),
    "real_volume": pl.Int64(),
}
BAR_COLUMNS = tuple(BAR_SCHEMA)
PRICE_COLUMNS = ("open", "high", "low", "close")

# numpy dtype of MetaTrader5.copy_rates_from_pos (time is server-clock epoch seconds)
_MT5_RATES_FIELDS = [
    ("time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("tick_volume", "<u8"),
    ("spread", "<i4"),
    ("real_volume", "<u8"),
]
MT5_RATES_DTYPE = np.dtype(_MT5_RATES_FIELDS)
MT5_RATES_NAMES = tuple(name for name, _ in _MT5_RATES_FIELDS)


class BarValidationError(ValueError):
    """A bar frame was refused; the message names the row and the problem."""


def empty_bars() -> pl.DataFrame:
    return pl.DataFrame(schema=BAR_SCHEMA)


def _describe_row(frame: pl.DataFrame, idx: int) -> str:
    row = frame.row(idx, named=True)
    return f"row {idx} (time {row['time']})"


def validate_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """Return the frame in canonical schema, or raise BarValidationError naming the first bad row."""
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise BarValidationError(f"bar frame is missing column(s): {', '.join(missing)}")
    frame = frame.select(BAR_COLUMNS)
    if frame.schema["time"] != BAR_SCHEMA["time"]:
        raise BarValidationError(
            f"column 'time' must be Datetime(us, UTC), got {frame.schema['time']}; "
            "convert server time with bars.from_server_time()"
        )
    try:
        frame = frame.cast({k: v for k, v in BAR_SCHEMA.items() if k != "time"}, strict=True)
    except pl.exceptions.InvalidOperationError as exc:
        raise BarValidationError(f"bar frame has a column of the wrong type: {exc}") from exc
    if frame.height == 0:
        return frame

    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("time").is_null(), "time is missing"),
        (pl.col("time").diff() <= pl.duration(microseconds=0), "time is not after the previous bar"),
    ]
    for c in PRICE_COLUMNS:
        checks.append((pl.col(c).is_null() | pl.col(c).is_nan(), f"{c} is missing or NaN"))
        checks.append((pl.col(c).is_infinite(), f"{c} is infinite"))
        checks.append((pl.col(c) <= 0, f"{c} is zero or negative"))
    checks += [
        (pl.col("high") < pl.max_horizontal("open", "close"), "high is below max(open, close)"),
        (pl.col("low") > pl.min_horizontal("open", "close"), "low is above min(open, close)"),
        (pl.col("tick_volume") < 0, "tick_volume is negative"),
        (pl.col("spread") < 0, "spread is negative"),
    ]
    flags = frame.select([expr.fill_null(False).alias(f"c{i}") for i, (expr, _) in enumerate(checks)])
    any_bad = flags.select(
        pl.any_horizontal(pl.all()).arg_max().alias("i"), pl.any_horizontal(pl.all()).any().alias("a")
    )
    if any_bad["a"][0]:
        idx = int(any_bad["i"][0])
        row_flags = flags.row(idx)
        problems = [checks[i][1] for i, f in enumerate(row_flags) if f]
        raise BarValidationError(f"bad bar at {_describe_row(frame, idx)}: {'; '.join(problems)}")
    return frame


def _first_null(values: pl.Series) -> int:
    """Row of the first null in a series that has one (0 when it has none)."""
    return values.is_null().arg_max() or 0


def from_server_time(frame: pl.DataFrame, server_tz: str | ServerClock = DEFAULT_SERVER_TZ) -> pl.DataFrame:
    """Convert a frame whose `time` is naive broker-server time (or epoch seconds) to UTC."""
    clock = server_tz if isinstance(server_tz, ServerClock) else ServerClock.parse(server_tz)
    time = frame["time"]
    if time.dtype.is_integer():
        time = pl.from_epoch(time, time_unit="s")
    elif isinstance(time.dtype, pl.Datetime) and time.dtype.time_zone is not None:
        return frame.with_columns(time.dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    elif not isinstance(time.dtype, pl.Datetime):
        time = time.str.to_datetime(strict=False)
        if time.null_count():
            bad = _first_null(time)
            raise BarValidationError(f"bad bar at row {bad}: time {frame['time'][bad]!r} is not a date-time")
    return frame.with_columns(clock.series_to_utc(time).alias("time"))


# other names a bars file may give MT5's columns (MetaTrader 5's own export, other tools)
_COLUMN_ALIASES = {
    "datetime": "time",
    "date": "time",
    "timestamp": "time",
    "date_time": "time",
    "tickvol": "tick_volume",
    "volume": "tick_volume",
    "vol": "real_volume",
}
_FILE_REQUIRED = ("time", "open", "high", "low", "close")


def _normalise_columns(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.rename({c: c.lower().strip().strip("<>") for c in frame.columns})
    frame = frame.rename(
        {
            c: _COLUMN_ALIASES[c]
            for c in frame.columns
            if c in _COLUMN_ALIASES and _COLUMN_ALIASES[c] not in frame.columns
        }
    )
    defaults = {
        "tick_volume": pl.lit(0, pl.Int64),
        "spread": pl.lit(0, pl.Int32),
        "real_volume": pl.lit(0, pl.Int64),
    }
    return frame.with_columns([v.alias(k) for k, v in defaults.items() if k not in frame.columns])


def _is_mt5_export(path: Path) -> bool:
    """MetaTrader 5's History Centre export: tab-separated, header `<DATE>\t<TIME>\t<OPEN>...`."""
    with path.open("rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf").upper()
    return head.startswith(b"<DATE>")


def _read_mt5_export(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(
        path,
        separator="\t",
        infer_schema_length=10_000,
        schema_overrides={"<DATE>": pl.String, "<TIME>": pl.String},
    )
    frame = frame.rename({c: c.strip().strip("<>").lower() for c in frame.columns})
    stamp = pl.col("date") + " " + pl.col("time") if "time" in frame.columns else pl.col("date") + " 00:00:00"
    time = frame.select(
        stamp.str.to_datetime("%Y.%m.%d %H:%M:%S", strict=False)
        .fill_null(stamp.str.to_datetime("%Y.%m.%d %H:%M", strict=False))
        .alias("t")
    )["t"]
    if time.null_count():
        bad = _first_null(time)
        raise BarValidationError(
            f"bad bar at row {bad}: date/time {frame['date'][bad]!r} is not YYYY.MM.DD HH:MM[:SS]"
        )
    return frame.drop("date", "time", strict=False).with_columns(time.alias("time"))


def _read_file(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".csv", ".txt", ".tsv"}:
        raise ValueError(f"unsupported bars file type {suffix!r} (use .parquet or .csv)")
    if path.stat().st_size == 0:
        raise BarValidationError(f"{path.name} is empty")
    kind = "parquet" if suffix == ".parquet" else "CSV"
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if _is_mt5_export(path):
            return _read_mt5_export(path)
        return pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
    except BarValidationError:
        raise
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BarValidationError(f"{path.name} is not a readable {kind} bars file: {first}") from exc


def load_bars(
    path: str | Path, server_tz: str | ServerClock = DEFAULT_SERVER_TZ, spread: int | None = None
) -> pl.DataFrame:
    """Load a parquet or CSV bars file (MT5 columns, server-time `time`), validated, in UTC.

    Also reads MetaTrader 5's own tab-separated history export. A file without a spread column is
    refused unless `spread` (points) is given: a silent zero spread makes any backtest look better
    than any broker. `spread` with a file that has its own spread column is refused too, so a caller
    that passed it can always say "spread assumed" in its report.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bars file not found: {path}")
    raw = _read_file(path)
    has_spread = any(c.lower().strip().strip("<>") == "spread" for c in raw.columns)
    if spread is not None and has_spread:
        raise BarValidationError(f"{path.name} has its own spread column; drop --spread")
    if spread is not None and spread < 0:
        raise BarValidationError(f"--spread must be >= 0 points, got {spread}")
    frame = _normalise_columns(raw)
    missing = [c for c in _FILE_REQUIRED if c not in frame.columns]
    if missing:
        raise BarValidationError(
            f"{path.name} has no column(s) {', '.join(missing)} (found: "
            f"{', '.join(raw.columns[:9])}); expected MT5's time, open, high, low, close, "
            "tick_volume, spread, real_volume"
        )
    if not has_spread:
        if spread is None:
            raise BarValidationError(
                f"{path.name} has no spread column: add one, or assume a constant spread "
                "with --spread POINTS (bars, backtest, train, evaluate; XAUUSD points are 0.01 USD, "
                "20-35 is typical)"
            )
        frame = frame.with_columns(pl.lit(spread, pl.Int32).alias("spread"))
    if frame.height == 0:
        raise BarValidationError(f"{path.name} has a header and no bars")
    try:
        return validate_bars(from_server_time(frame, server_tz))
    except pl.exceptions.PolarsError as exc:
        raise BarValidationError(f"{path.name}: {str(exc).strip().splitlines()[0]}") from exc


def from_mt5_rates(rates: np.ndarray, clock: ServerClock) -> pl.DataFrame:
    """Convert a `copy_rates_*` structured array (server epochs, oldest first) to a bar frame."""
    if rates is None or len(rates) == 0:
        return empty_bars()
    frame = pl.DataFrame({name: rates[name] for name in MT5_RATES_NAMES})
    return validate_bars(_normalise_columns(from_server_time(frame, clock)))


def to_mt5_rates(frame: pl.DataFrame, clock: ServerClock) -> np.ndarray:
    """The inverse of `from_mt5_rates`: a bar frame as MT5's structured array in server epochs."""
    out = np.empty(frame.height, dtype=MT5_RATES_DTYPE)
    server_naive = frame["time"].dt.convert_time_zone("UTC").to_list()
    out["time"] = [clock.utc_to_epoch(t) for t in server_naive]
    for c in ("open", "high", "low", "close", "tick_volume", "spread", "real_volume"):
        out[c] = frame[c].to_numpy()
    return out


def closed_bars(frame: pl.DataFrame, now_utc: datetime, timeframe_seconds: int = M15_SECONDS) -> pl.DataFrame:
    """Drop a still-forming last bar: a bar is closed once its open time + timeframe <= now."""
    if frame.height == 0:
        return frame
    last_open = frame["time"][-1]
    if last_open + timedelta(seconds=timeframe_seconds) > now_utc:
        return frame.head(frame.height - 1)
    return frame
