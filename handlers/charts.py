"""/chart [bars] (candles with SMC overlays, open positions and regime shading) and /equity (equity curve).

Drawing is CPU work: it runs in a worker thread (`asyncio.to_thread`) so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from functools import partial

import numpy as np
import polars as pl
from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message

from charts import ChartPosition, ChartTrade, candlestick_chart, equity_chart
from handlers.common import AuditNote, clock_line, esc, reply, usd
from handlers.services import Services
from trading.analyzer import AnalysisFrame

DEFAULT_BARS, MIN_BARS, MAX_BARS = 100, 20, 300
USAGE = f"Usage: /chart [bars] — bars from {MIN_BARS} to {MAX_BARS}, default {DEFAULT_BARS}"


def parse_bars(args: str | None) -> int:
    if not args:
        return DEFAULT_BARS
    try:
        n = int(args.strip())
    except ValueError:
        raise ValueError(f"{args.strip()!r} is not a whole number") from None
    if not MIN_BARS <= n <= MAX_BARS:
        raise ValueError(f"{n} is outside {MIN_BARS}..{MAX_BARS}")
    return n


def chart_inputs(frame: AnalysisFrame, n: int) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.Series | None]:
    """The last n bars, their SMC rows and regime labels from an AnalysisFrame."""
    bars = frame.bars.tail(n)
    smc = frame.structure.tail(n) if frame.structure is not None else None
    regimes = None
    if frame.regime_probs is not None and len(frame.regime_probs) == frame.bars.height:
        probs = np.asarray(frame.regime_probs, dtype=float)[-bars.height:]
        known = np.isfinite(probs).all(axis=1)
        if known.any():  # no regime model (all NaN): no labels at all, the header says "unknown"
            # -1 where the probabilities are missing: argmax of NaN would read as "low vol"
            labels = np.where(known, np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1), -1)
            regimes = pl.Series("regime", labels)
    return bars, smc, regimes


async def chart(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    try:
        n = parse_bars(command.args)
    except ValueError as exc:
        audit.result = f"usage: {exc}"
        await reply(message, f"{esc(exc)}\n{USAGE}")
        return
    frame = getattr(ctx.analyzer, "last_frame", None)
    if frame is None or frame.bars.is_empty():
        audit.result = "no data"
        await reply(message, "No bars analysed yet: wait for the next M15 candle.")
        return
    bars, smc, regimes = chart_inputs(frame, n)
    snap = ctx.engine.snapshot()
    positions = [ChartPosition(str(p.side), p.open_price, p.sl, p.tp, f"#{p.ticket}") for p in snap.positions]
    closed = await ctx.journal.closed_trades(since=bars["time"][0], limit=200)
    trades = [ChartTrade(str(t.side), t.open_time, t.open_price, t.close_time, t.close_price, t.profit or 0.0)
              for t in closed if t.close_time is not None and t.close_price is not None]
    regime_now = snap.analysis.regime.name if snap.analysis is not None else None  # the one /status shows
    png = await asyncio.to_thread(partial(candlestick_chart, trades=trades, regime_now=regime_now), bars, smc,
                                  positions, regimes, f"XAUUSD M15 · {bars.height} bars")
    audit.result = f"chart {bars.height} bars"
    await message.answer_photo(BufferedInputFile(png, "chart.png"), parse_mode="HTML",
                               caption=f"XAUUSD M15, last {bars.height:,} bars\n{clock_line(snap.time)}")


async def equity(message: Message, ctx: Services, audit: AuditNote) -> None:
    snaps = await ctx.journal.equity_snapshots(limit=5000)
    if len(snaps) < 2:
        audit.result = "no data"
        await reply(message, "Not enough equity snapshots yet for a chart.")
        return
    times = [s.time for s in snaps]
    before = [t for t in await ctx.journal.closed_trades(limit=5000)
              if t.close_time is not None and t.close_time <= times[0]]
    start = None
    if before:  # trades closed before the first sample: start the curve at the balance before them
        start = (min(t.open_time for t in before), snaps[0].balance - sum(t.profit or 0.0 for t in before))
    png = await asyncio.to_thread(partial(equity_chart, start=start), times, [s.equity for s in snaps],
                                  [s.balance for s in snaps], "Equity")
    audit.result = f"equity {len(snaps)} points"
    last = snaps[-1]
    await message.answer_photo(BufferedInputFile(png, "equity.png"), parse_mode="HTML",
                               caption=f"Equity {usd(last.equity)} · balance {usd(last.balance)}\n"
                                       f"{clock_line(ctx.engine.snapshot().time)}")


def make_router() -> Router:
    return Router(name="charts")
