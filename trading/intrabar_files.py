"""Loading real ticks and M1 detail for the intrabar modes, checked against the M15 bars.

A file that does not cover the bars (naming the days), has out-of-order or duplicate rows, or whose
clock is offset from the bars' (the offset is detected) is refused with one `IntrabarDataError` line,
and nothing is loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from trading.bars import BAR_COLUMNS, from_server_time
from trading.synthetic_ticks import ticks_to_m1
from trading.tick_path import BAR_MS, MINUTE_MS, TICK_COLUMNS, IntrabarDataError, bar_open_ms
from trading.timezones import DEFAULT_SERVER_TZ, ServerClock


def _read(path: str | Path) -> pl.DataFrame:
    p = Path(path)
    if not p.exists():
        raise IntrabarDataError(f"{p}: no such file")
    try:
        return pl.read_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else pl.read_csv(p)
    except Exception as exc:  # polars raises many kinds for a corrupt file
        raise IntrabarDataError(f"{p}: cannot read it: {exc}") from exc


def _check_order(ms: np.ndarray, what: str) -> None:
    if ms.size == 0:
        raise IntrabarDataError(f"{what} has no rows")
    step = np.diff(ms)
    back = np.flatnonzero(step < 0)
    if back.size:
        at = datetime.fromtimestamp(ms[back[0] + 1] / 1000, UTC)
        raise IntrabarDataError(
            f"{what}: {back.size} row(s) out of time order, first at {at:%Y-%m-%d %H:%M:%S} UTC"
        )
    dup = np.flatnonzero(step == 0)
    if dup.size:
        at = datetime.fromtimestamp(ms[dup[0]] / 1000, UTC)
        raise IntrabarDataError(
            f"{what}: {dup.size} duplicate row(s), first at {at:%Y-%m-%d %H:%M:%S.%f} UTC"
        )


def missing_days(bars: pl.DataFrame, row_ms: np.ndarray) -> list[str]:
    """Days (UTC) with bars but no finer row inside any of them."""
    opens = bar_open_ms(bars)
    start = np.searchsorted(row_ms, opens, side="left")
    end = np.searchsorted(row_ms, opens + BAR_MS, side="left")
    uncovered = opens[end <= start]
    days = sorted({datetime.fromtimestamp(t / 1000, UTC).date().isoformat() for t in uncovered.tolist()})
    bar_days = {datetime.fromtimestamp(t / 1000, UTC).date().isoformat() for t in opens.tolist()}
    covered_days = bar_days - set(days)
    # a day counts as missing only when none of its bars has detail (a missing minute here and there is not)
    return [d for d in days if d not in covered_days]


def _describe_days(days: list[str]) -> str:
    return (
        ", ".join(days)
        if len(days) <= 6
        else f"{', '.join(days[:3])} … {', '.join(days[-2:])} ({len(days)} days)"
    )


def _require_cover(bars: pl.DataFrame, row_ms: np.ndarray, what: str) -> None:
    days = missing_days(bars, row_ms)
    if days:
        raise IntrabarDataError(f"{what} does not cover the bars on {_describe_days(days)}")


def detect_offset_hours(bars: pl.DataFrame, m1: pl.DataFrame, span: int = 12) -> int:
    """The whole-hour shift of the M1 clock against the bars' clock that best makes the M1 opens equal
    the M15 opens (0 when they agree)."""
    bar_ms = bar_open_ms(bars)
    opens = bars["open"].to_numpy()
    m1_ms = bar_open_ms(m1)
    m1_open = m1["open"].to_numpy()
    best, best_score = 0, -1.0
    for hours in range(-span, span + 1):
        shifted = m1_ms + hours * 3_600_000
        idx = np.searchsorted(shifted, bar_ms)
        ok = idx < shifted.size
        idx_c = np.minimum(idx, shifted.size - 1)
        ok &= shifted[idx_c] == bar_ms
        if not ok.any():
            continue
        score = float(np.mean(np.abs(m1_open[idx_c[ok]] - opens[ok]) < 1e-6)) * min(1.0, ok.sum() / 50)
        if score > best_score + 1e-9 or (abs(score - best_score) <= 1e-9 and abs(hours) < abs(best)):
            best, best_score = hours, score
    return best


def load_detail(
    path: str | Path, bars: pl.DataFrame, server_tz: str | ServerClock = DEFAULT_SERVER_TZ
) -> pl.DataFrame:
    """An M1 bars file (the M15 files' schema, broker server time) checked against `bars` (UTC)."""
    raw = _read(path)
    missing = [c for c in BAR_COLUMNS if c not in raw.columns]
    if missing:
        raise IntrabarDataError(
            f"{path}: M1 detail needs the columns {', '.join(BAR_COLUMNS)}; missing {missing}"
        )
    try:
        frame = from_server_time(raw.select(BAR_COLUMNS), server_tz)
    except Exception as exc:
        raise IntrabarDataError(f"{path}: bad time column: {exc}") from exc
    ms = bar_open_ms(frame)
    _check_order(ms, f"{path}")
    if np.any(ms % MINUTE_MS):
        raise IntrabarDataError(f"{path}: times are not whole minutes: not an M1 file")
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    bad = ~(np.isfinite(o) & np.isfinite(c) & (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c)) & (lo > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IntrabarDataError(
            f"{path}: {int(bad.sum())} bar(s) with impossible prices, first at "
            f"{frame['time'][i]:%Y-%m-%d %H:%M} UTC"
        )
    off = -detect_offset_hours(bars, frame)
    if off:
        raise IntrabarDataError(
            f"{path}: its clock is {off:+d} h off the bars' (its M1 opens match the M15 opens "
            f"only {abs(off)} h {'later' if off > 0 else 'earlier'}); export both in one server time"
        )
    _require_cover(bars, ms, f"{path}")
    return frame


def load_ticks(
    path: str | Path, bars: pl.DataFrame, server_tz: str | ServerClock = DEFAULT_SERVER_TZ
) -> pl.DataFrame:
    """A ticks file (time_msc in broker server time as `copy_ticks_range` gives it, bid, ask; optional
    last, volume, flags) checked against `bars` (UTC). Returns time_msc converted to UTC ms, bid, ask."""
    raw = _read(path)
    missing = [c for c in TICK_COLUMNS if c not in raw.columns]
    if missing:
        raise IntrabarDataError(
            f"{path}: a ticks file needs the columns time_msc, bid, ask; missing {missing}"
        )
    clock = server_tz if isinstance(server_tz, ServerClock) else ServerClock.parse(server_tz)
    try:
        server_ms = raw["time_msc"].cast(pl.Int64).to_numpy()
        bid = raw["bid"].cast(pl.Float64).to_numpy()
        ask = raw["ask"].cast(pl.Float64).to_numpy()
    except Exception as exc:
        raise IntrabarDataError(
            f"{path}: time_msc must be integer milliseconds, bid/ask numbers: {exc}"
        ) from exc
    _check_order(server_ms, f"{path}")
    utc = from_server_time(
        pl.DataFrame({"time": pl.Series(server_ms, dtype=pl.Int64).cast(pl.Datetime("ms"))}), clock
    )["time"]
    ms = utc.dt.epoch("ms").to_numpy().astype(np.int64)
    bad = ~(np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask >= bid))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IntrabarDataError(
            f"{path}: {int(bad.sum())} tick(s) with a bad bid/ask, first at "
            f"{datetime.fromtimestamp(ms[i] / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
    frame = pl.DataFrame({"time_msc": ms, "bid": bid, "ask": ask})
    off = -detect_offset_hours(bars, ticks_to_m1(frame))
    if off:
        raise IntrabarDataError(
            f"{path}: its clock is {off:+d} h off the bars' (its prices match the M15 opens "
            f"only {abs(off)} h {'later' if off > 0 else 'earlier'}); export both in one server time"
        )
    _require_cover(bars, ms, f"{path}")
    return frame
