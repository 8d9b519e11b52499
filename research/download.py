"""`python main.py download`: the broker's own history (M15 or M1 bars, or ticks) into a parquet file.

History comes through the configured broker (BROKER=mt5 / mt5linux, or dry-run's DRY_RUN_SOURCE) with
MetaTrader 5's `copy_rates_range` / `copy_ticks_range`, one calendar month of broker server time per
request. After each month the file is rewritten atomically, so a run that stops (Ctrl-C, a refusal, a
dropped link) leaves whole months behind, and the same command run again continues from what the file
holds: it fetches only what lies before its first or after its last row, never a row twice.

Files (documented in README):
- bars (M15, M1): exactly the schema of the shared bars files: time (naive broker server time, µs),
  open, high, low, close (f64), tick_volume (i64), spread (i32, points), real_volume (i64). Only closed
  bars are written (the still-forming bar is left for the next run).
- ticks: time_msc (i64, ms since the epoch in the broker's server clock, as MT5 returns it), bid, ask,
  last (f64), volume (i64), flags (i32, MT5 TICK_FLAG_* bits). Ticks that share a millisecond are merged
  into one row (the last quote, the summed volume, the OR of the flags), so time_msc is unique.

This module imports only the standard library at load time: the CLI's parser is built without Polars.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from trading.broker.base import HistorySource

TIMEFRAME_MINUTES = {"M15": 15, "M1": 1}
KINDS = (*TIMEFRAME_MINUTES, "ticks")
EPOCH = datetime(1970, 1, 1)
META_KEY = "xaubot.download"  # parquet key-value metadata: the server-time range the file covers


class DownloadError(ValueError):
    """A download that cannot go on; the message is one line saying why and what to do."""


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    kind: str  # "M15" | "M1" | "ticks"
    start: datetime  # naive broker server time, inclusive
    end: datetime  # naive broker server time, exclusive
    out: Path

    @property
    def minutes(self) -> int | None:
        return TIMEFRAME_MINUTES.get(self.kind)

    @property
    def what(self) -> str:
        return "ticks" if self.kind == "ticks" else f"{self.kind} bars"


@dataclass(slots=True)
class DownloadReport:
    path: Path
    kind: str
    rows_added: int = 0
    rows_total: int = 0
    months: list[str] = field(default_factory=list)  # months fetched, in the order they were fetched
    empty_months: list[str] = field(default_factory=list)  # fetched, but the broker had nothing there
    first: Any = None
    last: Any = None

    def summary(self) -> str:
        what = "ticks" if self.kind == "ticks" else f"{self.kind} bars"
        if not self.months:
            return f"{self.path} already holds {self.rows_total:,} {what} for the whole range; nothing to download"
        text = (
            f"added {self.rows_added:,} {what} to {self.path} ({self.rows_total:,} in all, "
            f"{self.first} .. {self.last} server time)"
        )
        if self.empty_months:
            text += (
                f"; no data for {', '.join(self.empty_months)} (market closed or no history at the broker)"
            )
        return text


# ---- the request ------------------------------------------------------------------------------------


def _parse_day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise DownloadError(f"{flag} {text!r} is not a date (use YYYY-MM-DD, broker server time)") from None


def parse_request(
    kind: str, date_from: str, date_to: str | None, out: str | Path, now: datetime
) -> DownloadRequest:
    """Validate the command line against the broker's current server time `now` (naive).

    --to is inclusive (the whole day); without it, up to now. Bars stop at the still-forming bar.
    """
    if kind not in KINDS:
        raise DownloadError(f"--timeframe {kind!r} is not one of {', '.join(KINDS)}")
    path = Path(out)
    if path.suffix.lower() != ".parquet":
        raise DownloadError(f"--out {path} must be a .parquet file")
    if path.exists() and path.is_dir():
        raise DownloadError(f"--out {path} is a directory")
    start = datetime.combine(_parse_day(date_from, "--from"), datetime.min.time())
    if date_to is None:
        end = now
    else:
        end = datetime.combine(_parse_day(date_to, "--to"), datetime.min.time()) + timedelta(days=1)
        if end <= start:
            raise DownloadError(f"--to {date_to} is before --from {date_from}")
    if start >= now:
        raise DownloadError(
            f"--from {date_from} is in the future (the broker's server time is {now:%Y-%m-%d %H:%M})"
        )
    end = min(end, now)
    minutes = TIMEFRAME_MINUTES.get(kind)
    if minutes is not None:  # the bar open at `now` is still forming
        step = minutes * 60
        end = min(end, EPOCH + timedelta(seconds=int((now - EPOCH).total_seconds()) // step * step))
    return DownloadRequest(kind, start, end, path)


# ---- months and what is missing ---------------------------------------------------------------------


def month_chunks(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at calendar-month boundaries."""
    out = []
    lo = start
    while lo < end:
        nxt = datetime(lo.year + lo.month // 12, lo.month % 12 + 1, 1)
        out.append((lo, min(nxt, end)))
        lo = nxt
    return out


def _epoch_s(t: datetime) -> int:
    return int((t - EPOCH).total_seconds())


def _from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(ms))


def existing_span(request: DownloadRequest) -> tuple[datetime, datetime, int] | None:
    """(first, last, rows) of the rows already in --out, after checking it holds the same kind of data."""
    import polars as pl

    path = request.out
    if not path.exists():
        return None
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:
        raise DownloadError(
            f"{path} exists but is not a readable parquet file ({exc}); choose another --out"
        ) from None
    wanted = file_schema(request.kind)
    if dict(schema) != wanted:
        held = "ticks" if "time_msc" in schema else "bars" if "open" in schema else "other data"
        raise DownloadError(
            f"{path} holds {held} with another schema, not {request.what}; choose another --out"
        )
    key = "time_msc" if request.kind == "ticks" else "time"
    lazy = pl.scan_parquet(path)
    stats = lazy.select(
        pl.col(key).min().alias("first"),
        pl.col(key).max().alias("last"),
        pl.len().alias("n"),
        pl.col(key).diff().min().alias("step"),
    ).collect()
    n = int(stats["n"][0])
    if n == 0:
        return None
    first, last = stats["first"][0], stats["last"][0]
    if request.kind == "ticks":
        return _from_ms(first), _from_ms(last), n
    step = stats["step"][0]
    if step is not None and step != timedelta(minutes=request.minutes or 0):
        raise DownloadError(f"{path} holds bars {step} apart, not {request.kind}; choose another --out")
    return first, last, n


def covered(
    request: DownloadRequest, span: tuple[datetime, datetime, int] | None
) -> tuple[datetime, datetime] | None:
    """The server-time range [start, end) the file holds completely, gaps included: what the downloads that
    wrote it asked for (kept in the parquet metadata), else the span of its rows."""
    import json

    import polars as pl

    if span is None:
        return None
    meta = pl.read_parquet_metadata(request.out).get(META_KEY)
    if meta:
        try:
            data = json.loads(meta)
            return datetime.fromisoformat(data["from"]), datetime.fromisoformat(data["to"])
        except (ValueError, KeyError, TypeError):
            pass
    step = timedelta(minutes=request.minutes) if request.minutes else timedelta(milliseconds=1)
    return span[0], span[1] + step


def missing_ranges(
    request: DownloadRequest, cover: tuple[datetime, datetime] | None
) -> list[tuple[str, datetime, datetime]]:
    """("before"|"after", start, end) ranges of the request the file does not cover yet."""
    if cover is None:
        return [("after", request.start, request.end)] if request.start < request.end else []
    lo, hi = cover
    out = []
    if request.start < lo:
        out.append(("before", request.start, min(lo, request.end)))
    if request.end > hi:
        out.append(("after", max(hi, request.start), request.end))
    return [r for r in out if r[1] < r[2]]


# ---- schema, fetching and checking one month --------------------------------------------------------


def file_schema(kind: str) -> pl.Schema:
    import polars as pl

    if kind == "ticks":
        return pl.Schema(
            {
                "time_msc": pl.Int64(),
                "bid": pl.Float64(),
                "ask": pl.Float64(),
                "last": pl.Float64(),
                "volume": pl.Int64(),
                "flags": pl.Int32(),
            }
        )
    return pl.Schema(
        {
            "time": pl.Datetime("us"),
            "open": pl.Float64(),
            "high": pl.Float64(),
            "low": pl.Float64(),
            "close": pl.Float64(),
            "tick_volume": pl.Int64(),
            "spread": pl.Int32(),
            "real_volume": pl.Int64(),
        }
    )


def bars_from_rates(rates: Any, start: datetime, end: datetime, label: str) -> pl.DataFrame:
    """An MT5 rates array as a bars-file frame (naive server time), rows in [start, end), validated."""
    import polars as pl

    from trading.bars import BarValidationError, validate_bars

    frame = pl.DataFrame({name: rates[name] for name in rates.dtype.names if name in file_schema("M15")})
    frame = frame.with_columns(pl.from_epoch(pl.col("time"), time_unit="s").dt.cast_time_unit("us"))
    frame = frame.select(list(file_schema("M15"))).cast(file_schema("M15"))
    frame = frame.filter((pl.col("time") >= start) & (pl.col("time") < end))
    try:  # the shared checks: times strictly increasing, OHLC sane, no negative volume or spread
        validate_bars(frame.with_columns(pl.col("time").dt.replace_time_zone("UTC")))
    except BarValidationError as exc:
        raise DownloadError(
            f"the broker sent a bad bar for {label}: {exc}; nothing of {label} was written"
        ) from None
    return frame


def ticks_from_array(ticks: Any, start: datetime, end: datetime, label: str) -> pl.DataFrame:
    """An MT5 ticks array as a ticks-file frame, rows in [start, end), one row per millisecond, validated."""
    import polars as pl

    lo, hi = _epoch_s(start) * 1000, _epoch_s(end) * 1000
    frame = pl.DataFrame(
        {name: ticks[name] for name in ("time_msc", "bid", "ask", "last", "volume", "flags")}
    )
    frame = frame.cast(file_schema("ticks")).filter((pl.col("time_msc") >= lo) & (pl.col("time_msc") < hi))
    if frame.height == 0:
        return frame
    back = frame.select(
        (pl.col("time_msc").diff() < 0).arg_max().alias("i"), (pl.col("time_msc").diff() < 0).any()
    )
    if back["time_msc"][0]:
        i = int(back["i"][0])
        raise DownloadError(
            f"the broker sent ticks out of order for {label} (row {i}, time_msc "
            f"{frame['time_msc'][i]}); nothing of {label} was written"
        )
    frame = (
        frame.group_by("time_msc", maintain_order=True)
        .agg(
            pl.col("bid").last(),
            pl.col("ask").last(),
            pl.col("last").last(),
            pl.col("volume").sum(),
            pl.col("flags").bitwise_or(),
        )
        .select(list(file_schema("ticks")))
        .cast(file_schema("ticks"))
    )
    bad = (
        ~pl.col("bid").is_finite()
        | ~pl.col("ask").is_finite()
        | (pl.col("bid") <= 0)
        | (pl.col("ask") < pl.col("bid"))
    )
    flags = frame.select(bad.arg_max().alias("i"), bad.any().alias("any"))
    if flags["any"][0]:
        row = frame.row(int(flags["i"][0]), named=True)
        raise DownloadError(
            f"the broker sent a bad tick for {label} (time_msc {row['time_msc']}: bid {row['bid']}, "
            f"ask {row['ask']}); nothing of {label} was written"
        )
    return frame


def write_with(path: Path, frame: pl.DataFrame, where: str, cover: tuple[datetime, datetime]) -> int:
    """Put `frame` before or after the rows of `path` and record the range now covered; atomically
    (a temporary file, then a rename). Returns the rows in the file."""
    import json

    import polars as pl

    tmp = path.with_name(path.name + ".part")
    parts = [frame.lazy()]
    if path.exists():
        old = pl.scan_parquet(path)
        parts = [*parts, old] if where == "before" else [old, *parts]
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"from": cover[0].isoformat(), "to": cover[1].isoformat()})
    pl.concat(parts, how="vertical").sink_parquet(tmp, metadata={META_KEY: meta})
    os.replace(tmp, path)
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


# ---- the download ------------------------------------------------------------------------------------


async def download(source: HistorySource, request: DownloadRequest, console: Any = None) -> DownloadReport:
    """Fetch every month of `request` the file does not hold yet, checking and saving each as it comes."""
    from rich.console import Console

    from research.report_text import bar_progress
    from trading.broker.base import BrokerError
    from trading.numbers import count

    span = existing_span(request)  # before connecting: a wrong --out changes nothing
    cover = covered(request, span)
    report = DownloadReport(request.out, request.kind, rows_total=span[2] if span else 0)
    work: list[tuple[str, datetime, datetime]] = []
    for where, lo, hi in missing_ranges(request, cover):
        chunks = month_chunks(lo, hi)
        work += [(where, a, b) for a, b in (reversed(chunks) if where == "before" else chunks)]
    if work:
        await source.connect()
        try:
            # a bar on a terminal, plain lines on stderr every 10 s in a pipe or a log
            with bar_progress(
                console if console is not None else Console(), len(work), unit="months"
            ) as tracker:
                track = tracker(f"{source.symbol} {request.what}")
                for done, (where, lo, hi) in enumerate(work):
                    label = _label(lo, hi)
                    track(done, len(work), f"{label}, {count(report.rows_added)} rows so far")
                    try:
                        frame = await _fetch(source, request, lo, hi, label)
                    except BrokerError as exc:
                        saved = (
                            f"{len(report.months)} month(s) saved in {request.out}; " if report.months else ""
                        )
                        raise DownloadError(
                            f"the broker refused {request.what} for {label}: {exc}; {saved}"
                            "run the same command again to continue"
                        ) from None
                    report.months.append(label)
                    cover = (lo, hi) if cover is None else (min(cover[0], lo), max(cover[1], hi))
                    if frame.height == 0:
                        report.empty_months.append(label)
                    if frame.height or request.out.exists():  # an empty month still extends the cover
                        report.rows_total = write_with(request.out, frame, where, cover)
                        report.rows_added += frame.height
                    track(done + 1, len(work), f"{count(report.rows_added)} rows")
        finally:
            await source.disconnect()
    if report.rows_total == 0:
        raise DownloadError(
            f"the broker has no {request.what} between {request.start:%Y-%m-%d} and "
            f"{request.end:%Y-%m-%d %H:%M} (server time); nothing was written"
        )
    final = existing_span(request)
    if final is not None:
        report.first, report.last = final[0], final[1]
    report.empty_months.sort()
    return report


def _label(lo: datetime, hi: datetime) -> str:
    """'2025-07' for a whole month, '2025-08-30..2025-08-31' for the part of one."""
    whole = (
        lo.day == 1
        and lo.time() == datetime.min.time()
        and hi == month_chunks(lo, lo + timedelta(days=32))[0][1]
    )
    return f"{lo:%Y-%m}" if whole else f"{lo:%Y-%m-%d}..{hi - timedelta(microseconds=1):%Y-%m-%d}"


async def _fetch(
    source: HistorySource, request: DownloadRequest, lo: datetime, hi: datetime, label: str
) -> pl.DataFrame:
    if request.minutes is not None:
        rates = await source.rates_range(request.minutes, _epoch_s(lo), _epoch_s(hi) - 1)
        return bars_from_rates(rates, lo, hi, label)
    # seconds-granular bounds: ask one second past the end, keep [lo, hi) to the millisecond
    ticks = await source.ticks_range(_epoch_s(lo), _epoch_s(hi))
    return ticks_from_array(ticks, lo, hi, label)


# ---- the command -------------------------------------------------------------------------------------


def history_source(settings: Any) -> HistorySource:
    """The configured MetaTrader 5 connection as a history source (never trading, so netting is fine)."""
    kind = settings.price_broker
    if kind == "paper":
        raise DownloadError(
            "the paper broker has no broker history to download (BROKER=paper): set BROKER=mt5 "
            "or mt5linux (or dry-run with DRY_RUN_SOURCE) and the MT5_* settings"
        )
    from bot.brokers import mt5_broker

    return mt5_broker(settings, kind, trades=False)  # type: ignore[return-value]  # an MT5Broker


def add_download_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "download",
        help="download M15/M1 bars or ticks from the configured MT5 broker into a parquet file (resumable)",
        description="Reads history through the configured broker (BROKER=mt5 or mt5linux; dry-run uses "
        "DRY_RUN_SOURCE) one month at a time, checks it and writes it as parquet. Run the same command "
        "again to continue or to bring the file up to date: rows already in the file are not fetched again.",
    )
    p.add_argument("--timeframe", required=True, choices=KINDS, help="M15 or M1 bars, or ticks")
    p.add_argument(
        "--from",
        dest="date_from",
        required=True,
        metavar="DATE",
        help="first day, YYYY-MM-DD in broker server time",
    )
    p.add_argument("--to", dest="date_to", metavar="DATE", help="last day (inclusive); default: up to now")
    p.add_argument("--out", required=True, metavar="FILE", help="parquet file to write or continue")
    p.add_argument("--env-file", default=".env", help="settings file (default .env; missing is fine)")
    p.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    from bot.config import SettingsError, load_settings
    from trading.broker.base import BrokerError
    from trading.timezones import utc_now

    try:
        settings = load_settings(args.env_file)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"configuration error: {problem}", file=sys.stderr)
        return 2
    try:
        now = settings.server_clock.from_utc(utc_now())
        request = parse_request(args.timeframe, args.date_from, args.date_to, args.out, now)
        source = history_source(settings)
        report = asyncio.run(download(source, request))
    except (DownloadError, BrokerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0
