"""Smart Money Concepts on closed bars: swings, fair value gaps, order blocks, BOS/CHoCH, liquidity.

Every event is stamped on the bar where it becomes *known* (decision 3), so row t of
`analyze(bars)` depends only on bars 0..t:

- a swing pivot at bar p is confirmed at bar p + swing_length (its high/low is the extreme of
  bars p - L .. p + L, ties included) and appears there, its level being the pivot's high/low;
- a fair value gap is stamped on its third candle;
- an order block is stamped on the swing-confirmation bar that reveals it (never back-dated to
  the candle it points at); its zone is that candle's high/low; `ob_mitigated` is +1/-1 on the
  first later bar that trades back into the latest bullish/bearish zone (bearish wins a tie);
- BOS/CHoCH sit on the candle whose close breaks the last confirmed swing level;
- buy-/sell-side liquidity is the nearest swing high/low level not yet traded through.

`signal()` turns the latest rows into an `SMCSetup` per analysis-and-models.md §2 with
decision 8: entry at the last close, stop beyond the zone, broker TP at 2 R capped at 4 x ATR,
and entries with less than 2 R refused. A zone that a close has since gone through is void. The
rule itself, and `signal_at` (the setup of any row of an analysed frame), are `trading.smc_signal`'s.

The sequential rules (swings, structure, order blocks and their mitigation, liquidity) run in one
numba loop over numpy arrays, ATR in another; fair value gaps are vectorised.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trading.smc_kernels import atr_series as _atr_series
from trading.smc_kernels import sequential_rules as _sequential_rules
from trading.smc_signal import (
    MIN_RR,
    MIN_SL_ATR,
    RECENT_BARS,
    SIGNAL_COLUMNS,
    SL_BUFFER_ATR,
    TP_ATR_CAP,
    SignalColumns,
    SMCSetup,
    decide,
    signal_at,
    signal_columns,
    signal_columns_of,
)

ATR_PERIOD = 14
REQUIRED_COLUMNS = ("time", "open", "high", "low", "close")

EVENT_COLUMNS = ("swing_high", "swing_low", "fvg", "ob", "ob_mitigated", "bos", "choch", "trend")
LEVEL_COLUMNS = (
    "swing_high_level",
    "swing_low_level",
    "fvg_top",
    "fvg_bottom",
    "ob_top",
    "ob_bottom",
    "buyside_liquidity",
    "sellside_liquidity",
)
# Output column order of `analyze`.
SMC_COLUMNS = (
    "time",
    "close",
    "atr",
    "swing_high",
    "swing_high_level",
    "swing_low",
    "swing_low_level",
    "fvg",
    "fvg_top",
    "fvg_bottom",
    "ob",
    "ob_top",
    "ob_bottom",
    "ob_mitigated",
    "bos",
    "choch",
    "trend",
    "buyside_liquidity",
    "sellside_liquidity",
)


# --------------------------------------------------------------------------- vectorised rules


def fair_value_gaps(
    high: np.ndarray, low: np.ndarray, min_gap: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-candle imbalances stamped on the third candle: (signal, top, bottom) arrays.

    Bullish when high[t-2] < low[t] (zone high[t-2]..low[t]); bearish when low[t-2] > high[t]
    (zone high[t]..low[t-2]). A gap must be strictly positive and at least `min_gap` (price units).
    """
    n = high.shape[0]
    sig = np.zeros(n, np.int8)
    top = np.full(n, np.nan)
    bottom = np.full(n, np.nan)
    if n < 3:
        return sig, top, bottom
    h2, l2, h0, l0 = high[:-2], low[:-2], high[2:], low[2:]
    bull_gap = l0 - h2
    bear_gap = l2 - h0
    bull = (bull_gap > 0) & (bull_gap >= min_gap)
    bear = (bear_gap > 0) & (bear_gap >= min_gap)
    sig[2:] = bull.astype(np.int8) - bear.astype(np.int8)
    top[2:] = np.where(bull, l0, np.where(bear, l2, np.nan))
    bottom[2:] = np.where(bull, h2, np.where(bear, h0, np.nan))
    return sig, top, bottom


def _float_column(name: str, values: np.ndarray) -> pl.Series:
    return pl.Series(name, values, pl.Float64, nan_to_null=True)


def analyze(
    bars: pl.DataFrame,
    swing_length: int = 5,
    fvg_min_gap: float = 0.0,
    ob_lookback: int = 10,
) -> pl.DataFrame:
    """Per-bar SMC events for a bar frame (BAR_SCHEMA; only time/open/high/low/close are read).

    `ob_lookback`: an order block is looked for among the ob_lookback - 1 candles before the
    confirming bar (the original's window). `fvg_min_gap` is in price units (USD for XAUUSD).

    Returns one row per bar, same order, columns `SMC_COLUMNS`: event flags are Int8
    (swing_high/swing_low 1/0; fvg, ob, ob_mitigated, bos, choch, trend +1/-1/0) and levels are
    Float64, null where there is no event. `close` and `atr` (ATR(14), TA-Lib/Wilder) are carried
    so that `signal(analysis)` needs nothing else.
    """
    missing = [col for col in REQUIRED_COLUMNS if col not in bars.columns]
    if missing:
        raise ValueError(f"smc.analyze: bar frame is missing column(s): {', '.join(missing)}")
    if swing_length < 1:
        raise ValueError(f"smc.analyze: swing_length must be >= 1, got {swing_length}")
    if ob_lookback < 2:
        raise ValueError(f"smc.analyze: ob_lookback must be >= 2, got {ob_lookback}")
    if fvg_min_gap < 0:
        raise ValueError(f"smc.analyze: fvg_min_gap must be >= 0, got {fvg_min_gap}")

    o, h, lo, c = (
        bars[col].to_numpy().astype(np.float64, copy=False) for col in ("open", "high", "low", "close")
    )
    sh, sh_lvl, sl, sl_lvl, ob, ob_top, ob_bot, ob_mit, bos, choch, trend, bsl, ssl = _sequential_rules(
        o, h, lo, c, swing_length, ob_lookback
    )
    atr = _atr_series(h, lo, c, ATR_PERIOD)
    fvg, fvg_top, fvg_bot = fair_value_gaps(h, lo, fvg_min_gap)

    ints = {
        "swing_high": sh,
        "swing_low": sl,
        "fvg": fvg,
        "ob": ob,
        "ob_mitigated": ob_mit,
        "bos": bos,
        "choch": choch,
        "trend": trend,
    }
    floats = {
        "close": c,
        "atr": atr,
        "swing_high_level": sh_lvl,
        "swing_low_level": sl_lvl,
        "fvg_top": fvg_top,
        "fvg_bottom": fvg_bot,
        "ob_top": ob_top,
        "ob_bottom": ob_bot,
        "buyside_liquidity": bsl,
        "sellside_liquidity": ssl,
    }
    columns: list[pl.Series] = [bars["time"]]
    for name in SMC_COLUMNS[1:]:
        if name in ints:
            columns.append(pl.Series(name, ints[name], pl.Int8))
        else:
            columns.append(_float_column(name, floats[name]))
    return pl.DataFrame(columns)


# --------------------------------------------------------------------------- setup


def wilder_atr(bars: pl.DataFrame, period: int = ATR_PERIOD) -> float | None:
    """ATR(period) of the last bar (TA-Lib convention), or None when there are too few bars."""
    if bars.height <= period:
        return None
    h, lo, c = (bars[col].to_numpy().astype(np.float64, copy=False) for col in ("high", "low", "close"))
    return float(_atr_series(h, lo, c, period)[-1])


def explain_signal(
    analysis: pl.DataFrame,
    bars: pl.DataFrame | None = None,
    atr: float | None = None,
    min_rr: float = MIN_RR,
    tp_atr_cap: float = TP_ATR_CAP,
    *,
    recent: int = RECENT_BARS,
    min_sl_atr: float = MIN_SL_ATR,
    sl_buffer_atr: float = SL_BUFFER_ATR,
) -> tuple[SMCSetup | None, str]:
    """`signal` with the reason when there is no setup (for the SMC gate's verdict)."""
    missing = [col for col in SIGNAL_COLUMNS if col not in analysis.columns and col != "close"]
    if missing:
        raise ValueError(f"smc.signal: analysis frame is missing column(s): {', '.join(missing)}")
    if recent < 1 or min_rr <= 0 or tp_atr_cap <= 0 or min_sl_atr < 0 or sl_buffer_atr < 0:
        raise ValueError(
            "smc.signal: need recent >= 1, min_rr > 0, tp_atr_cap > 0, min_sl_atr >= 0, sl_buffer_atr >= 0"
        )
    if analysis.height < recent:
        return None, f"need at least {recent} analysed bars, have {analysis.height}"
    if bars is not None and bars.height != analysis.height:
        raise ValueError(
            f"smc.signal: bars ({bars.height} rows) do not match the analysis ({analysis.height} rows)"
        )

    if bars is not None:
        closes = bars["close"].tail(recent).to_numpy()
    elif "close" in analysis.columns:
        closes = analysis["close"].tail(recent).to_numpy()
    else:
        raise ValueError("smc.signal: no close price: pass bars or an analysis with a 'close' column")
    if atr is None:
        if bars is not None:
            atr = wilder_atr(bars)
        elif "atr" in analysis.columns:
            atr = analysis["atr"][-1]
    if atr is None or not np.isfinite(atr) or atr <= 0:
        return None, "no ATR yet (too few bars)"
    atr = float(atr)

    window = analysis.tail(max(recent, 20))
    cols = {name: window[name].to_numpy().tolist() for name in SIGNAL_COLUMNS[1:]}
    args = (min_rr, tp_atr_cap, recent, min_sl_atr, sl_buffer_atr)
    return decide(cols, window.height, closes.tolist(), float(atr), *args)


def signal(
    analysis: pl.DataFrame,
    bars: pl.DataFrame | None = None,
    atr: float | None = None,
    min_rr: float = MIN_RR,
    tp_atr_cap: float = TP_ATR_CAP,
    *,
    recent: int = RECENT_BARS,
    min_sl_atr: float = MIN_SL_ATR,
    sl_buffer_atr: float = SL_BUFFER_ATR,
) -> SMCSetup | None:
    """The SMC setup of the latest bar, or None.

    BUY when structure is up (trend up or a bullish BOS/CHoCH in the last 10 bars) and a bullish
    FVG or order block formed in those bars; SELL mirrors (BUY wins when both qualify). Entry is
    the last close; the stop sits `sl_buffer_atr` x ATR beyond the zone (most recent FVG preferred,
    else order block) and at least `min_sl_atr` x ATR from entry; TP = entry + min_rr x risk,
    capped at tp_atr_cap x ATR. A setup whose capped reward is below min_rr x risk is refused.
    ATR: `atr` if given, else ATR(14) of `bars`, else the analysis' `atr` column.
    """
    setup, _ = explain_signal(
        analysis,
        bars,
        atr,
        min_rr,
        tp_atr_cap,
        recent=recent,
        min_sl_atr=min_sl_atr,
        sl_buffer_atr=sl_buffer_atr,
    )
    return setup


__all__ = [
    "ATR_PERIOD",
    "EVENT_COLUMNS",
    "LEVEL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SIGNAL_COLUMNS",
    "SMC_COLUMNS",
    "SMCSetup",
    "SignalColumns",
    "analyze",
    "explain_signal",
    "fair_value_gaps",
    "signal",
    "signal_at",
    "signal_columns",
    "signal_columns_of",
    "wilder_atr",
]
