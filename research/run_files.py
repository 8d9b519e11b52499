"""The files a backtest run reads and writes beside its bars, shared by `backtest` and `backtest
--walk-forward`: the traded range with its warm-up, the intrabar path the flags pick, the trades CSV."""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser is built without polars; the commands import it when they run
    import polars as pl


def bars_in_range(
    bars: pl.DataFrame, date_from: str | None, date_to: str | None, warmup: int
) -> pl.DataFrame:
    """Keep the warm-up bars before --from so the first traded bar has its full history."""
    start = 0
    if date_from:
        t = datetime.fromisoformat(date_from).replace(tzinfo=UTC)
        start = max(0, int(bars["time"].search_sorted(t)) - warmup)
    end = bars.height
    if date_to:
        t = datetime.fromisoformat(date_to).replace(tzinfo=UTC) + (
            datetime(2000, 1, 2) - datetime(2000, 1, 1)
        )
        end = int(bars["time"].search_sorted(t))
    if end - start <= warmup:
        raise ValueError(
            f"only {max(end - start, 0)} bars in the range; need more than the {warmup}-bar warm-up"
        )
    return bars.slice(start, end - start)


def intrabar_path(args: argparse.Namespace, bars: pl.DataFrame, config: Any) -> tuple[Any, str]:
    """The finest intrabar mode the flags give, and a line naming it."""
    from trading.intrabar import M1Detail, RealTicks, load_detail, load_ticks

    ticks_file, detail_file = getattr(args, "ticks", None), getattr(args, "detail", None)
    traded = bars.slice(config.warmup_bars)  # the warm-up bars need no detail
    if ticks_file:
        ticks = load_ticks(ticks_file, traded, server_tz=args.server_tz)
        return (
            lambda frame: RealTicks(frame, ticks, ticks_per_bar=config.ticks_per_bar),
            f"real ticks from {ticks_file}",
        )
    if detail_file:
        m1 = load_detail(detail_file, traded, server_tz=args.server_tz)
        return (
            lambda frame: M1Detail(frame, m1, ticks_per_bar=config.ticks_per_bar),
            f"M1 detail from {detail_file} (4 ticks a minute)",
        )
    return None, f"generated from the M15 bars, {config.ticks_per_bar} ticks a bar"


def write_trades(path: Path, result: Any) -> None:
    info = {o.ticket: o for o in result.opened}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "ticket",
                "side",
                "volume",
                "open_time",
                "open_price",
                "close_time",
                "close_price",
                "sl",
                "tp",
                "profit",
                "exit_reason",
                "session",
                "regime",
                "setup",
            ]
        )
        for t in result.trades:
            o = info.get(t.ticket)
            extra = o.extra if o else {}
            w.writerow(
                [
                    t.ticket,
                    t.side,
                    t.volume,
                    t.open_time.isoformat(),
                    t.open_price,
                    t.close_time.isoformat(),
                    t.close_price,
                    o.sl if o else t.sl,
                    o.tp if o else t.tp,
                    round(t.profit, 2),
                    t.reason,
                    extra.get("session", ""),
                    extra.get("regime", ""),
                    extra.get("setup", ""),
                ]
            )
