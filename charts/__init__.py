"""Charts: plain data (Polars frames, sequences, small records) in, PNG bytes out. No aiogram, no engine.

Drawing is synchronous and CPU-bound; callers in async code run it off the event loop
(`await asyncio.to_thread(candlestick_chart, ...)`). Each chart builds its own Figure on an Agg canvas,
so charts may be drawn in several threads at once.
"""

from charts.candles import ChartPosition, ChartTrade, candlestick_chart, candlestick_figure
from charts.distribution import pnl_distribution_chart, pnl_distribution_figure
from charts.equity import equity_chart, equity_figure
from charts.pnl import daily_pnl_chart, daily_pnl_figure
from charts.style import DARK, PNG_SIGNATURE, Theme, no_data_png

__all__ = [
    "DARK",
    "PNG_SIGNATURE",
    "ChartPosition",
    "ChartTrade",
    "Theme",
    "candlestick_chart",
    "candlestick_figure",
    "daily_pnl_chart",
    "daily_pnl_figure",
    "equity_chart",
    "equity_figure",
    "no_data_png",
    "pnl_distribution_chart",
    "pnl_distribution_figure",
]
