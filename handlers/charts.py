"""/chart [bars] (candles with SMC overlays, open positions and regime shading) and /equity (the equity
curve and, once trades have closed, the P/L per day beside it as one album).

Drawing is CPU work: it runs in a worker thread (`asyncio.to_thread`) so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial

import numpy as np
import polars as pl
from aiogram import Bot, Router
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message

from charts import ChartPosition, ChartTrade, candlestick_chart, daily_pnl_chart, equity_chart
from handlers.common import AuditNote, clock_line, esc, reply, usd
from handlers.media import send_charts
from handlers.services import Services
from trading.analyzer import AnalysisFrame
from trading.timezones import wib_date

DEFAULT_BARS, MIN_BARS, MAX_BARS = 100, 20, 300
MAX_DAILY_BARS = 90  # days of the /equity album's daily P/L chart
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
        probs = np.asarray(frame.regime_probs, dtype=float)[-bars.height :]
        known = np.isfinite(probs).all(axis=1)  # no model or warm-up rows are NaN: unknown, not "low"
        if known.any():
            labels = np.argmax(np.where(known[:, None], probs, 0.0), axis=1)
            regimes = pl.Series("regime", np.where(known, labels, -1))
    return bars, smc, regimes


async def chart(message: Message, command: CommandObject, ctx: Services, audit: AuditNote) -> None:
    try:
        n = parse_bars(command.args)
    except ValueError as exc:
        audit.result = f"usage: {exc}"
        await reply(message, f"{esc(exc)}\n{USAGE}")
        return
    frame = ctx.analyzer.last_frame
    if frame is None or frame.bars.is_empty():
        audit.result = "no data"
        await reply(message, "No bars analysed yet: wait for the next M15 candle.")
        return
    bars, smc, regimes = chart_inputs(frame, n)
    snap = ctx.engine.snapshot()
    positions = [ChartPosition(str(p.side), p.open_price, p.sl, p.tp, f"#{p.ticket}") for p in snap.positions]
    closed = await ctx.journal.closed_trades(since=bars["time"][0], limit=200)
    trades = [
        ChartTrade(str(t.side), t.open_time, t.open_price, t.close_time, t.close_price, t.profit or 0.0)
        for t in closed
        if t.close_time is not None and t.close_price is not None
    ]
    regime_now = snap.analysis.regime.name if snap.analysis is not None else None  # the one /status shows
    png = await asyncio.to_thread(
        partial(candlestick_chart, trades=trades, regime_now=regime_now),
        bars,
        smc,
        positions,
        regimes,
        f"XAUUSD M15 · {bars.height} bars",
    )
    audit.result = f"chart {bars.height} bars"
    await message.answer_photo(
        BufferedInputFile(png, "chart.png"),
        parse_mode="HTML",
        caption=f"XAUUSD M15, last {bars.height:,} bars\n{clock_line(snap.time)}",
    )


async def equity(message: Message, ctx: Services, bot: Bot, audit: AuditNote) -> None:
    snaps = await ctx.journal.equity_snapshots(limit=5000)
    if len(snaps) < 2:
        audit.result = "no data"
        await reply(message, "Not enough equity snapshots yet for a chart.")
        return
    times = [s.time for s in snaps]
    before = [
        t
        for t in await ctx.journal.closed_trades(limit=5000)
        if t.close_time is not None and t.close_time <= times[0]
    ]
    start = None
    if before:  # trades closed before the first sample: start the curve at the balance before them
        start = (min(t.open_time for t in before), snaps[0].balance - sum(t.profit or 0.0 for t in before))
    png = await asyncio.to_thread(
        partial(equity_chart, start=start),
        times,
        [s.equity for s in snaps],
        [s.balance for s in snaps],
        "Equity",
    )
    daily = await daily_pnl_png(ctx, times[0])
    audit.result = f"equity {len(snaps)} points" + (" + daily P/L" if daily else "")
    last = snaps[-1]
    await send_charts(
        bot,
        message.chat.id,
        [(png, "equity.png"), (daily, "daily_pnl.png")],
        caption=f"Equity {usd(last.equity)} · balance {usd(last.balance)}\n"
        f"{clock_line(ctx.engine.snapshot().time)}",
    )


async def daily_pnl_png(ctx: Services, since: datetime) -> bytes:
    """P/L per WIB day (days with closed trades) since the equity curve starts; b"" when none closed."""
    assert ctx.queries is not None
    today = wib_date(ctx.engine.snapshot().time)
    days = min(max((today - wib_date(since)).days + 1, 1), MAX_DAILY_BARS)
    rows = [r for r in reversed(await ctx.queries.periods("day", days, today)) if r.trades]
    if not rows:
        return b""
    return await asyncio.to_thread(
        daily_pnl_chart, [r.start for r in rows], [r.net for r in rows], "P/L per day (WIB)"
    )


def make_router() -> Router:
    return Router(name="charts")
